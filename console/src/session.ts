/**
 * The signed-in token: in memory only (a reload signs out), read from the link's fragment
 * or traded for client credentials at /token, revoked at sign-out, dropped at its expiry.
 * Its claims are read here only to choose what to show; the API decides what it may do.
 */
import { request } from './api.js';

export interface Claims {
  readonly sub: string;
  readonly org_id: string;
  readonly scope: string;
  readonly exp: number;
}

export interface Session {
  readonly token: string;
  readonly claims: Claims;
  readonly scopes: ReadonlySet<string>;
}

let current: Session | undefined;
let expiryTimer: number | undefined;
let onEnd: (reason: string) => void = () => {};

function decodeClaims(token: string): Claims {
  const payload = token.split('.')[1];
  if (!payload || token.split('.').length !== 3) throw new Error('That is not an access token: it should have three parts separated by dots.');
  try {
    const text = atob(payload.replace(/-/g, '+').replace(/_/g, '/'));
    const claims = JSON.parse(decodeURIComponent(escape(text))) as Claims;
    if (typeof claims.sub !== 'string' || typeof claims.exp !== 'number') throw new Error('claims');
    return { ...claims, scope: typeof claims.scope === 'string' ? claims.scope : '', org_id: String(claims.org_id ?? '') };
  } catch {
    throw new Error('That token cannot be read: copy the whole link again.');
  }
}

export function session(): Session | undefined {
  return current;
}

/** Called when the session ends by itself (expiry, or the server refusing the token). */
export function whenSessionEnds(handler: (reason: string) => void): void {
  onEnd = handler;
}

export function startSession(token: string): Session {
  const claims = decodeClaims(token);
  const remainingMs = claims.exp * 1000 - Date.now();
  if (remainingMs <= 0) throw new Error('That sign-in link has expired: ask for a new one with `sentryagent-idp console`.');
  current = { token, claims, scopes: new Set(claims.scope.split(' ').filter(Boolean)) };
  window.clearTimeout(expiryTimer);
  expiryTimer = window.setTimeout(() => endSession('Your session has expired. Sign in again.'), Math.min(remainingMs, 2 ** 31 - 1));
  return current;
}

/** Ends the session locally (no request), telling the page why. */
export function endSession(reason: string): void {
  current = undefined;
  window.clearTimeout(expiryTimer);
  onEnd(reason);
}

/** A link's `#token=…`: taken, and removed from the address bar and history at once. */
export function takeTokenFromFragment(): string | undefined {
  const match = /^#token=([A-Za-z0-9._~-]+)$/.exec(window.location.hash);
  if (window.location.hash.startsWith('#token=')) history.replaceState(null, '', window.location.pathname + window.location.search);
  return match?.[1];
}

export async function signInWithCredentials(clientId: string, clientSecret: string): Promise<Session> {
  const answer = await request<{ access_token: string }>('POST', '/api/v1/token', {
    form: { grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret },
  });
  return startSession(answer.access_token);
}

/** Revokes the token at the server (RFC 7009), then forgets it. */
export async function signOut(): Promise<void> {
  const signedIn = current;
  if (!signedIn) return;
  try {
    await request('POST', '/api/v1/token/revoke', { token: signedIn.token, form: { token: signedIn.token, token_type_hint: 'access_token' } });
  } finally {
    current = undefined;
    window.clearTimeout(expiryTimer);
  }
}
