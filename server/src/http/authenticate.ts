/** Bearer authentication for every protected endpoint: an active token of ours with the named scope. */
import type { Context, Next } from 'koa';
import type { AccessTokens, ActiveToken } from '../oauth/access-tokens.js';
import { hasScope, type Scope } from '../oauth/scopes.js';
import { insufficientScopeApi, unauthorized } from './errors.js';

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

export function bearerTokenOf(ctx: Context): string | undefined {
  const header = ctx.get('Authorization');
  return BEARER.exec(header)?.[1];
}

export function requireBearerToken(ctx: Context): string {
  const token = bearerTokenOf(ctx);
  if (!token) throw unauthorized();
  return token;
}

export function assertActive(active: ActiveToken | undefined, scope?: Scope): ActiveToken {
  if (!active) throw unauthorized('The access token is invalid, expired or revoked.', true);
  if (scope && !hasScope(active.scope, scope)) throw insufficientScopeApi(scope);
  return active;
}

export function requireScope(tokens: AccessTokens, scope: Scope) {
  return async function requireScopeMiddleware(ctx: Context, next: Next): Promise<void> {
    const token = requireBearerToken(ctx);
    ctx.state.caller = assertActive(await tokens.findActiveOne(token), scope);
    await next();
  };
}

export function callerOf(ctx: Context): ActiveToken {
  return ctx.state.caller as ActiveToken;
}
