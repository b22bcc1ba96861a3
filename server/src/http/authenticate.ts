/**
 * Bearer authentication (RFC 6750) for every protected endpoint. What a token means is
 * not http's business: the app passes a lookup that turns a presented token into a caller
 * (or undefined), and the caller's scopes are checked against the endpoint's.
 */
import type { Context, Next } from 'koa';
import { InsufficientScope, Unauthenticated } from '../errors.js';

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export type CallerLookup<C> = (token: string) => Promise<C | undefined>;

export function bearerTokenOf(ctx: Context): string | undefined {
  return BEARER.exec(ctx.get('Authorization'))?.[1];
}

export function requireBearerToken(ctx: Context): string {
  const token = bearerTokenOf(ctx);
  if (!token) throw new Unauthenticated();
  return token;
}

/** The caller behind a token that was presented: 401 when the lookup finds none. */
export function assertAuthenticated<C>(caller: C | undefined): C {
  if (!caller) throw new Unauthenticated('The access token is invalid, expired or revoked.', true);
  return caller;
}

/** Middleware: an authenticated caller whose token carries `scope`, kept for `callerOf`. */
export function requireScope<C extends { readonly scopes: readonly string[] }>(lookup: CallerLookup<C>, scope: string) {
  return async function requireScopeMiddleware(ctx: Context, next: Next): Promise<void> {
    const caller = assertAuthenticated(await lookup(requireBearerToken(ctx)));
    if (!caller.scopes.includes(scope)) throw new InsufficientScope(scope);
    ctx.state.caller = caller;
    await next();
  };
}

export function callerOf<C>(ctx: Context): C {
  return ctx.state.caller as C;
}
