/**
 * POST /api/v1/token/introspect (RFC 7662). The caller needs an active Bearer token
 * with tokens:read; caller and subject token are checked in one query. Every
 * well-formed request gets 200: inactive tokens answer `{active: false}` and nothing more.
 */
import type { Context } from 'koa';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import { readForm } from '../http/body.js';
import { assertActive, requireBearerToken } from '../http/authenticate.js';
import { invalidRequest } from '../http/errors.js';
import { countRequest, setRateLimitHeaders } from '../http/rate-limit.js';
import type { AccessTokens } from './access-tokens.js';

const STANDARD_CLAIMS = new Set(['iss', 'sub', 'client_id', 'scope', 'jti', 'iat', 'exp']);

export function introspectionEndpoint(knex: Knex, tokens: AccessTokens, config: Config) {
  return async function introspectToken(ctx: Context): Promise<void> {
    const callerToken = requireBearerToken(ctx);
    const params = await readForm(ctx);
    if (!params.token) throw invalidRequest("The 'token' parameter is required.");
    const [caller, subject] = await tokens.findActive([callerToken, params.token]);
    const active = assertActive(caller, 'tokens:read');
    setRateLimitHeaders(ctx, await countRequest(knex, active.agentId, config.rateLimitPerMinute));
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    if (!subject) {
      ctx.body = { active: false };
      return;
    }
    const { claims } = subject;
    const provenance = Object.fromEntries(Object.entries(claims).filter(([name]) => !STANDARD_CLAIMS.has(name)));
    ctx.body = {
      active: true,
      sub: claims.sub,
      client_id: claims.client_id,
      scope: claims.scope,
      token_type: 'Bearer',
      iat: claims.iat,
      exp: claims.exp,
      iss: claims.iss,
      jti: claims.jti,
      ...provenance,
    };
  };
}
