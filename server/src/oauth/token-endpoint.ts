/** POST /api/v1/token: reads the form and the client's credentials, answers the grant. */
import type { Context } from 'koa';
import { InvalidRequest, UnsupportedGrantType } from '../errors.js';
import { readForm } from '../http/body.js';
import type { IssuedToken } from './access-tokens.js';
import { readClientCredentials, type PresentedClient } from './client-authentication.js';
import { rateLimitHeaders } from './rate-limit.js';

export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
export const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
// RFC 8693 §3: the subject token types a partner's JWT may be sent as.
const SUBJECT_TOKEN_TYPES = new Set(['urn:ietf:params:oauth:token-type:jwt', 'urn:ietf:params:oauth:token-type:id_token']);

/** A federated grant (RFC 8693, RFC 7523): the partner's token, and `client_id` as the agent to act as. */
export type FederatedGrant = (request: {
  readonly grantType: 'token_exchange' | 'jwt_bearer';
  readonly token: string;
  readonly agentId: string;
  readonly scope?: string;
  readonly resource?: string;
}) => Promise<IssuedToken>;

export function tokenEndpoint(
  grantClientCredentials: (presented: PresentedClient, scope: string | undefined, resource: string | undefined) => Promise<IssuedToken>,
  grantFederated?: FederatedGrant,
) {
  return async function issueTokenForClient(ctx: Context): Promise<void> {
    const params = await readForm(ctx);
    if (params.grant_type === undefined || params.grant_type === '') {
      throw new InvalidRequest("The 'grant_type' parameter is required.");
    }
    if (params.grant_type === 'client_credentials') {
      respondWithToken(ctx, await grantClientCredentials(readClientCredentials(ctx, params), params.scope, params.resource));
      return;
    }
    if (grantFederated && params.grant_type === TOKEN_EXCHANGE) {
      const token = required(params, 'subject_token');
      if (!SUBJECT_TOKEN_TYPES.has(required(params, 'subject_token_type'))) {
        throw new InvalidRequest("The 'subject_token_type' must be urn:ietf:params:oauth:token-type:jwt or …:id_token.");
      }
      if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
        throw new InvalidRequest("The only 'requested_token_type' is urn:ietf:params:oauth:token-type:access_token.");
      }
      // Delegation (an actor acting for the subject) is not offered yet.
      if (params.actor_token !== undefined || params.actor_token_type !== undefined) throw new InvalidRequest("'actor_token' is not supported.");
      const issued = await grantFederated({ grantType: 'token_exchange', token, agentId: required(params, 'client_id'), scope: params.scope, resource: resourceOf(params) });
      respondWithToken(ctx, issued, { issued_token_type: ACCESS_TOKEN_TYPE });
      return;
    }
    if (grantFederated && params.grant_type === JWT_BEARER) {
      const token = required(params, 'assertion');
      respondWithToken(ctx, await grantFederated({ grantType: 'jwt_bearer', token, agentId: required(params, 'client_id'), scope: params.scope, resource: resourceOf(params) }));
      return;
    }
    throw new UnsupportedGrantType();
  };
}

function required(params: Record<string, string | undefined>, name: string): string {
  const value = params[name];
  if (value === undefined || value === '') throw new InvalidRequest(`The '${name}' parameter is required.`);
  return value;
}

/** RFC 8707 `resource`; RFC 8693's `audience` is taken as its alias (the same value, or alone). */
function resourceOf(params: Record<string, string | undefined>): string | undefined {
  const { resource, audience } = params;
  if (resource !== undefined && audience !== undefined && resource !== audience) {
    throw new InvalidRequest("'audience' is an alias of 'resource': send one, or the same value in both.");
  }
  return resource ?? audience;
}

/** RFC 6749 §5.1: the token response, never cached. */
export function respondWithToken(ctx: Context, issued: IssuedToken, extra: Record<string, unknown> = {}): void {
  if (issued.rateLimit) ctx.set(rateLimitHeaders(issued.rateLimit));
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.body = {
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    ...extra,
    scope: issued.scope,
  };
}
