/** POST /api/v1/token: reads the form and the client's credentials, answers the grant. */
import type { Context } from 'koa';
import { InvalidRequest, UnsupportedGrantType } from '../errors.js';
import { readForm } from '../http/body.js';
import type { IssuedToken } from './access-tokens.js';
import { readClientCredentials, type PresentedClient } from './client-authentication.js';
import { rateLimitHeaders } from './rate-limit.js';

export function tokenEndpoint(
  grantClientCredentials: (presented: PresentedClient, scope: string | undefined, resource: string | undefined) => Promise<IssuedToken>,
) {
  return async function issueTokenForClient(ctx: Context): Promise<void> {
    const params = await readForm(ctx);
    if (params.grant_type === undefined || params.grant_type === '') {
      throw new InvalidRequest("The 'grant_type' parameter is required.");
    }
    if (params.grant_type !== 'client_credentials') throw new UnsupportedGrantType();
    respondWithToken(ctx, await grantClientCredentials(readClientCredentials(ctx, params), params.scope, params.resource));
  };
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
