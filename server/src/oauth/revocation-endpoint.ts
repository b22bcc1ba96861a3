/**
 * POST /api/v1/token/revoke (RFC 7009). An agent may revoke its own tokens; revoking
 * another agent's token takes agents:write. Unknown, foreign, expired or already
 * revoked tokens answer 200 too (RFC 7009 §2.2).
 */
import type { Context } from 'koa';
import type { Knex } from 'knex';
import type { Config } from '../config.js';
import { readForm } from '../http/body.js';
import { assertActive, requireBearerToken } from '../http/authenticate.js';
import { OAuthError, invalidRequest } from '../http/errors.js';
import { countRequest, setRateLimitHeaders } from '../http/rate-limit.js';
import type { AccessTokens } from './access-tokens.js';
import { hasScope } from './scopes.js';

export function revocationEndpoint(knex: Knex, tokens: AccessTokens, config: Config) {
  return async function revokeToken(ctx: Context): Promise<void> {
    const callerToken = requireBearerToken(ctx);
    const params = await readForm(ctx);
    if (!params.token) throw invalidRequest("The 'token' parameter is required.");
    const caller = assertActive(await tokens.findActiveOne(callerToken));
    setRateLimitHeaders(ctx, await countRequest(knex, caller.agentId, config.rateLimitPerMinute));
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');

    const subject = await tokens.verifySignature(params.token);
    if (subject) {
      if (subject.sub !== caller.agentId && !hasScope(caller.scope, 'agents:write')) {
        throw new OAuthError(403, 'unauthorized_client', 'You do not have permission to revoke this token.');
      }
      await tokens.revoke(subject.jti, `agent:${caller.agentId}`);
    }
    ctx.body = {};
  };
}
