/** GET /api/v1/audit and /api/v1/audit/verify (scope audit:read). */
import Router from '@koa/router';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { isStorableInstant, pageLimit, parseWith } from '../http/validation.js';
import type { AuditService } from './audit-service.js';

const auditQuery = z.strictObject({
  type: z.string().regex(/^[a-z_.]{1,64}$/, 'must be an event type such as token.issued').optional(),
  agentId: z.uuid().optional(),
  orgId: z.uuid().optional(),
  since: z.iso.datetime({ offset: true }).refine(isStorableInstant, 'must be between the years 0001 and 9999').optional(),
  limit: pageLimit,
  cursor: z.string().regex(/^[1-9]\d{0,15}$/, 'must be a cursor this server returned').optional(),
});

const verifyQuery = z.strictObject({
  // A compact JWS (audit/audit-digests.ts), as the server logged it.
  digest: z.string().min(1).max(8192).optional(),
});

export function auditRoutes(audit: AuditService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/audit' });
  const canRead = requireScope(authenticate, 'audit:read');

  router.get('/', canRead, async (ctx) => {
    const query = parseWith(auditQuery, ctx.query, 'The query');
    const { events, nextCursor } = await audit.list(callerOf<AgentCaller>(ctx), {
      type: query.type,
      agentId: query.agentId?.toLowerCase(),
      orgId: query.orgId?.toLowerCase(),
      since: query.since ? new Date(query.since) : undefined,
      beforeId: query.cursor ? Number(query.cursor) : undefined,
      limit: query.limit,
    });
    ctx.body = { data: events, nextCursor };
  });

  router.get('/verify', canRead, async (ctx) => {
    const query = parseWith(verifyQuery, ctx.query, 'The query');
    ctx.body = await audit.verify(callerOf<AgentCaller>(ctx), query.digest);
  });

  return router;
}
