/** GET /api/v1/stats (scope audit:read): an organization's token traffic, for the admin console. */
import Router from '@koa/router';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { parseWith } from '../http/validation.js';
import type { StatsService } from './stats-service.js';

const statsQuery = z.strictObject({
  orgId: z.uuid().optional(),
});

export function statsRoutes(stats: StatsService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/stats' });

  router.get('/', requireScope(authenticate, 'audit:read'), async (ctx) => {
    const query = parseWith(statsQuery, ctx.query, 'The query');
    ctx.body = await stats.read(callerOf<AgentCaller>(ctx), query.orgId?.toLowerCase());
  });

  return router;
}
