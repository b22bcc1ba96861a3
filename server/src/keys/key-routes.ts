/** GET /api/v1/keys (scope audit:read): the signing keys and their states, without key material. */
import Router from '@koa/router';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { callerOf, requireScope, type CallerLookup } from '../http/authenticate.js';
import { parseWith } from '../http/validation.js';
import type { SigningKeyService } from './signing-key-service.js';

const keysQuery = z.strictObject({});

export function keyRoutes(keys: SigningKeyService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/keys' });

  router.get('/', requireScope(authenticate, 'audit:read'), async (ctx) => {
    parseWith(keysQuery, ctx.query, 'The query');
    ctx.body = { data: await keys.listStates(callerOf<AgentCaller>(ctx)) };
  });

  return router;
}
