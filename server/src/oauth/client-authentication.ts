/**
 * RFC 6749 §2.3.1: client_secret_basic or client_secret_post, never both in one
 * request. Basic credentials are form-urlencoded before base64 (so `+` is a space).
 */
import type { Context } from 'koa';
import { InvalidClient, InvalidRequest } from '../errors.js';

export interface PresentedClient {
  readonly clientId: string;
  /** Undefined: a client_id came without a secret; refused as any failed authentication of that id. */
  readonly clientSecret: string | undefined;
  readonly usedBasicAuth: boolean;
}

function formDecode(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

export function readClientCredentials(ctx: Context, params: Record<string, string>): PresentedClient {
  const header = ctx.get('Authorization');
  if (header) {
    const match = /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
    if (!match) {
      throw /^Basic\b/i.test(header)
        ? new InvalidClient(true)
        : new InvalidRequest('The token endpoint accepts HTTP Basic client authentication or client_secret in the body.');
    }
    if (params.client_secret !== undefined) {
      throw new InvalidRequest('Use one client authentication method per request: HTTP Basic or client_secret in the body, not both.');
    }
    const decoded = Buffer.from(match[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new InvalidClient(true);
    let clientId: string;
    let clientSecret: string;
    try {
      clientId = formDecode(decoded.slice(0, colon));
      clientSecret = formDecode(decoded.slice(colon + 1));
    } catch {
      throw new InvalidClient(true);
    }
    if (params.client_id !== undefined && params.client_id !== clientId) {
      throw new InvalidRequest('The client_id in the body does not match the HTTP Basic credentials.');
    }
    return { clientId, clientSecret, usedBasicAuth: true };
  }
  if (params.client_id === undefined) throw new InvalidClient(false);
  return { clientId: params.client_id, clientSecret: params.client_secret, usedBasicAuth: false };
}
