/** POST /api/v1/oidc/token: parses `{token, agentId, scope?}` (JSON or form) and answers the exchange. */
import type { Context } from 'koa';
import { z } from 'zod';
import { InvalidRequest } from '../errors.js';
import { readJsonOrForm } from '../http/body.js';
import { respondWithToken } from '../oauth/token-endpoint.js';
import type { GitHubExchange } from './exchange-service.js';

const exchangeBody = z.object({
  token: z.string().min(1).max(16_384),
  agentId: z.uuid(),
  scope: z.string().max(1024).optional(),
  // RFC 8707: the service the token is for (one of TOKEN_AUDIENCES); this server by default.
  resource: z.string().max(2048).optional(),
});

export function exchangeEndpoint(exchange: GitHubExchange) {
  return async function exchangeGitHubIdToken(ctx: Context): Promise<void> {
    const parsed = exchangeBody.safeParse(await readJsonOrForm(ctx));
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path.join('.') || 'body';
      throw new InvalidRequest(`The '${field}' parameter is missing or malformed.`);
    }
    const issued = await exchange(parsed.data.token, parsed.data.agentId.toLowerCase(), parsed.data.scope, parsed.data.resource);
    respondWithToken(ctx, issued, { expires_at: issued.expiresAt.toISOString() });
  };
}
