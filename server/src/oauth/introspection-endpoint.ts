/**
 * POST /api/v1/token/introspect (RFC 7662). Every well-formed request from a caller with
 * tokens:read gets 200: inactive tokens answer `{active: false}` and nothing more.
 */
import type { Context } from 'koa';
import { ValidationFailed } from '../errors.js';
import { requireBearerToken } from '../http/authenticate.js';
import { readForm } from '../http/body.js';
import { rateLimitHeaders } from './rate-limit.js';
import type { TokenService } from './token-service.js';

const STANDARD_CLAIMS = new Set(['iss', 'aud', 'sub', 'client_id', 'org_id', 'scope', 'jti', 'iat', 'exp']);

export function introspectionEndpoint(service: TokenService) {
  return async function introspectToken(ctx: Context): Promise<void> {
    const callerToken = requireBearerToken(ctx);
    const params = await readForm(ctx);
    if (!params.token) throw new ValidationFailed("The 'token' parameter is required.");
    const { subject: active, rateLimit } = await service.introspect(callerToken, params.token);
    if (rateLimit) ctx.set(rateLimitHeaders(rateLimit));
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    if (!active) {
      ctx.body = { active: false };
      return;
    }
    const subject = active.claims;
    const provenance = Object.fromEntries(Object.entries(subject).filter(([name]) => !STANDARD_CLAIMS.has(name)));
    ctx.body = {
      active: true,
      sub: subject.sub,
      client_id: subject.client_id,
      // Tokens issued before organizations carry no org_id claim: their agent's organization is the answer.
      org_id: active.orgId,
      scope: subject.scope,
      token_type: 'Bearer',
      iat: subject.iat,
      exp: subject.exp,
      iss: subject.iss,
      ...(subject.aud !== undefined && { aud: subject.aud }),
      jti: subject.jti,
      ...provenance,
    };
  };
}
