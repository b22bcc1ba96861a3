/** GET /api/v1/audit and /api/v1/audit/verify (scope audit:read). */
import Router from '@koa/router';
import type { Knex } from 'knex';
import { z } from 'zod';
import { requireScope } from '../http/authenticate.js';
import { isStorableInstant, pageLimit, parseWith } from '../http/validation.js';
import type { AccessTokens } from '../oauth/access-tokens.js';
import { verifyAuditChain } from './audit-chain.js';
import { listAuditEvents } from './audit-log.js';

const auditQuery = z.strictObject({
  type: z.string().regex(/^[a-z_.]{1,64}$/, 'must be an event type such as token.issued').optional(),
  agentId: z.uuid().optional(),
  since: z.iso.datetime({ offset: true }).refine(isStorableInstant, 'must be between the years 0001 and 9999').optional(),
  limit: pageLimit,
  cursor: z.string().regex(/^[1-9]\d{0,15}$/, 'must be a cursor this server returned').optional(),
});

export function auditRoutes(knex: Knex, tokens: AccessTokens): Router {
  const router = new Router({ prefix: '/api/v1/audit' });
  const canRead = requireScope(tokens, 'audit:read');

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(auditQuery, ctx.query, 'The query');
    const { events, nextCursor } = await listAuditEvents(knex, {
      type: query.type,
      agentId: query.agentId?.toLowerCase(),
      since: query.since ? new Date(query.since) : undefined,
      beforeId: query.cursor ? Number(query.cursor) : undefined,
      limit: query.limit,
    });
    ctx.body = { data: events, nextCursor };
  });

  router.get('/verify', canRead, async (ctx) => {
    ctx.body = await verifyAuditChain(knex);
  });

  return router;
}
