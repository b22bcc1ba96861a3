/** /api/v1/orgs: organizations (admin:orgs in the platform organization) and their usage. Parse, call the service, render. */
import Router from '@koa/router';
import type { Context } from 'koa';
import { z } from 'zod';
import type { AgentCaller } from '../authorization/caller.js';
import { readJson } from '../http/body.js';
import { callerOf, requireScope, assertAuthenticated, requireBearerToken, type CallerLookup } from '../http/authenticate.js';
import { decodeCursor, encodeCursor, isStorableInstant, pageLimit, parseWith, requireUuid } from '../http/validation.js';
import { createOrganizationInput, organizationPatchInput } from './organization-input.js';
import type { OrganizationService } from './organization-service.js';

const listQuery = z.strictObject({
  limit: pageLimit,
  cursor: z.string().max(512).optional(),
  status: z.enum(['active', 'suspended', 'decommissioned']).optional(),
});
const organizationCursor = z.object({ createdAt: z.iso.datetime().refine(isStorableInstant), orgId: z.uuid() });

const orgIdOf = (ctx: Context) => requireUuid(ctx.params.orgId, 'orgId');

export function organizationRoutes(organizations: OrganizationService, authenticate: CallerLookup<AgentCaller>): Router {
  const router = new Router({ prefix: '/api/v1/orgs' });
  const canManage = requireScope(authenticate, 'admin:orgs');
  // Reading one organization: the service decides (admin:orgs, or its own caller with agents:read).
  const isAuthenticated = async (ctx: Context, next: () => Promise<unknown>) => {
    ctx.state.caller = assertAuthenticated(await authenticate(requireBearerToken(ctx)));
    await next();
  };
  const caller = (ctx: Context) => callerOf<AgentCaller>(ctx);

  router.post('/', canManage, async (ctx) => {
    const input = parseWith(createOrganizationInput, await readJson(ctx), 'The organization');
    const { organization, admin } = await organizations.create(caller(ctx), input);
    ctx.status = 201;
    if (!admin) {
      ctx.body = organization;
      return;
    }
    // The admin's secret is in this answer only.
    ctx.set('Cache-Control', 'no-store');
    const { credentialId, clientId, clientSecret, createdAt } = admin.credential;
    ctx.body = { ...organization, admin: { ...admin.agent, credential: { credentialId, clientId, clientSecret, createdAt } } };
  });

  router.get('/', canManage, async (ctx) => {
    const query = parseWith(listQuery, ctx.query, 'The query');
    const after = decodeCursor(query.cursor, organizationCursor);
    const page = await organizations.list(caller(ctx), { limit: query.limit, status: query.status, after });
    const last = page.organizations[page.organizations.length - 1];
    ctx.body = { data: page.organizations, nextCursor: page.hasMore ? encodeCursor({ createdAt: last.createdAt, orgId: last.orgId }) : null };
  });

  router.get('/:orgId', isAuthenticated, async (ctx) => {
    ctx.body = await organizations.get(caller(ctx), orgIdOf(ctx));
  });

  router.get('/:orgId/usage', isAuthenticated, async (ctx) => {
    ctx.body = await organizations.usage(caller(ctx), orgIdOf(ctx));
  });

  router.patch('/:orgId', canManage, async (ctx) => {
    const orgId = orgIdOf(ctx);
    ctx.body = await organizations.update(caller(ctx), orgId, parseWith(organizationPatchInput, await readJson(ctx), 'The organization'));
  });

  router.post('/:orgId/suspend', canManage, async (ctx) => {
    ctx.body = await organizations.suspend(caller(ctx), orgIdOf(ctx));
  });

  router.post('/:orgId/reactivate', canManage, async (ctx) => {
    ctx.body = await organizations.reactivate(caller(ctx), orgIdOf(ctx));
  });

  router.delete('/:orgId', canManage, async (ctx) => {
    ctx.body = await organizations.decommission(caller(ctx), orgIdOf(ctx));
  });

  return router;
}
