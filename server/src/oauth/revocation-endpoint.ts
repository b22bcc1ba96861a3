/** POST /api/v1/token/revoke (RFC 7009): 200 for every well-formed request the caller may make. */
import type { Context } from 'koa';
import { ValidationFailed } from '../errors.js';
import { requireBearerToken } from '../http/authenticate.js';
import { readForm } from '../http/body.js';
import { rateLimitHeaders } from './rate-limit.js';
import type { TokenService } from './token-service.js';

export function revocationEndpoint(service: TokenService) {
  return async function revokeToken(ctx: Context): Promise<void> {
    const callerToken = requireBearerToken(ctx);
    const params = await readForm(ctx);
    if (!params.token) throw new ValidationFailed("The 'token' parameter is required.");
    const { rateLimit } = await service.revoke(callerToken, params.token);
    if (rateLimit) ctx.set(rateLimitHeaders(rateLimit));
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    ctx.body = {};
  };
}
