/**
 * Organizations: created, changed, suspended, reactivated and decommissioned by a platform
 * caller holding admin:orgs (or the operator); read by those, and by the organization's own
 * callers with agents:read. Each change and its audit row (in the organization concerned)
 * commit together.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Agent } from '../agents/agent.js';
import { insertAgent } from '../agents/agent-store.js';
import { insertCredential, type Credential } from '../agents/credential-store.js';
import { actorOf, holdsScope, requireScope, type Caller } from '../authorization/caller.js';
import { assertMayManage, assertMayManageAll } from '../authorization/escalation.js';
import { isCrossOrganization, mayActIn } from '../authorization/tenancy.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { isUuid } from '../config.js';
import { Conflict, Forbidden, InsufficientScope, NotFound } from '../errors.js';
import { generateClientSecret } from '../oauth/client-secrets.js';
import { revokeLiveTokens } from '../oauth/token-store.js';
import type { Organization } from '../tenancy/organization.js';
import type { CreateOrganizationInput, OrganizationPatchInput } from './organization-input.js';
import {
  countLiveAgents,
  findOrganization,
  findOrganizationBySlug,
  insertOrganization,
  listOrganizations,
  readMonthlyUsage,
  updateOrganization,
  type OrganizationPageQuery,
} from '../tenancy/organization-store.js';

const TOP_AGENTS = 20;

export interface CreatedOrganization {
  readonly organization: Organization;
  /** The first admin, when asked for: its secret is in this answer only. */
  readonly admin?: { readonly agent: Agent; readonly credential: Credential & { readonly clientSecret: string } };
}

export interface OrganizationUsage {
  readonly orgId: string;
  /** The calendar month (UTC) counted, e.g. 2026-11. */
  readonly month: string;
  readonly tokens: {
    readonly granted: number;
    readonly limit: number | null;
    readonly byAgent: { agentId: string; name: string; granted: number }[];
  };
  /** Grants refused this month, by reason (rate_limited, org_monthly_limit, org_inactive, …). */
  readonly refusals: Record<string, number>;
  readonly agents: { readonly count: number; readonly limit: number | null };
}

export interface OrganizationServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
  /** Writes the refusals this instance counted but has not stored yet, so that usage includes them. */
  readonly flushRefusals?: () => Promise<void>;
}

const isUniqueViolation = (error: unknown) => (error as { code?: string }).code === '23505';

export class OrganizationService {
  constructor(private readonly deps: OrganizationServiceDeps) {}

  /** A new organization and, with `admin`, its first admin agent and credential (the onboarding of a customer). */
  async create(caller: Caller, input: CreateOrganizationInput): Promise<CreatedOrganization> {
    assertManagesOrganizations(caller);
    const adminScopes = input.admin?.scopes ?? [];
    if (input.admin) assertMayManage(caller, { agentId: '', scopes: [] }, adminScopes);
    const actor = actorOf(caller);
    try {
      return await this.deps.knex.transaction(async (trx) => {
        const organization = await insertOrganization(trx, {
          id: crypto.randomUUID(),
          slug: input.slug,
          name: input.name,
          limits: { monthlyTokens: null, maxAgents: null, maxWebhookEndpoints: null, ...input.limits },
        });
        const { orgId } = organization;
        await appendAuditEvent(trx, { type: 'org.created', orgId, actor, data: { slug: organization.slug, name: organization.name, limits: organization.limits } });
        if (!input.admin) return { organization };
        const agentId = crypto.randomUUID();
        const agent = await insertAgent(trx, { id: agentId, orgId, name: input.admin.name, description: null, scopes: adminScopes });
        await appendAuditEvent(trx, { type: 'agent.created', agentId, orgId, actor, data: { name: agent.name, scopes: agent.scopes } });
        const clientSecret = generateClientSecret();
        const credential = await insertCredential(trx, agent, clientSecret);
        await appendAuditEvent(trx, { type: 'credential.created', agentId, orgId, actor, data: { credentialId: credential.credentialId } });
        return { organization, admin: { agent, credential: { ...credential, clientSecret } } };
      });
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`An organization with the slug '${input.slug}' exists.`);
      throw error;
    }
  }

  async list(caller: Caller, query: OrganizationPageQuery): Promise<{ organizations: Organization[]; hasMore: boolean }> {
    assertManagesOrganizations(caller);
    return listOrganizations(this.deps.knex, query);
  }

  /** admin:orgs (platform), or the organization's own caller with agents:read. */
  async get(caller: Caller, orgId: string): Promise<Organization> {
    assertMayRead(caller, orgId);
    const organization = await findOrganization(this.deps.knex, orgId);
    if (!organization) throw new NotFound('Organization');
    return organization;
  }

  /** An organization by its slug or id, as the CLI's `--org` names it. */
  async resolve(caller: Caller, slugOrId: string): Promise<Organization> {
    const organization = isUuid(slugOrId)
      ? await findOrganization(this.deps.knex, slugOrId.toLowerCase())
      : await findOrganizationBySlug(this.deps.knex, slugOrId);
    if (!organization || !mayActIn(caller, organization.orgId)) throw new NotFound('Organization');
    return organization;
  }

  /** Name, slug and limits; the platform organization keeps its slug. */
  async update(caller: Caller, orgId: string, patch: OrganizationPatchInput): Promise<Organization> {
    return this.change(caller, orgId, async (trx, current) => {
      if (current.status === 'decommissioned') throw new Conflict('The organization has been decommissioned.');
      if (current.isPlatform && patch.slug !== undefined && patch.slug !== current.slug) {
        throw new Conflict("The platform organization's slug cannot change.");
      }
      const organization = await updateOrganization(trx, orgId, patch);
      const changes: Record<string, { from: unknown; to: unknown }> = {};
      for (const field of ['slug', 'name'] as const) {
        if (current[field] !== organization[field]) changes[field] = { from: current[field], to: organization[field] };
      }
      for (const field of ['monthlyTokens', 'maxAgents', 'maxWebhookEndpoints'] as const) {
        if (current.limits[field] !== organization.limits[field]) changes[`limits.${field}`] = { from: current.limits[field], to: organization.limits[field] };
      }
      await appendAuditEvent(trx, { type: 'org.updated', orgId, actor: actorOf(caller), data: { changed: Object.keys(changes), changes } });
      return organization;
    });
  }

  /**
   * Its agents get no tokens, and their live tokens are revoked (and inactive at once on
   * every instance: the token-state lookup reads the organization). A reactivation
   * restores new issuance, never the old tokens.
   */
  async suspend(caller: Caller, orgId: string): Promise<Organization> {
    return this.change(caller, orgId, async (trx, current) => {
      assertNotPlatform(current, 'suspended');
      if (current.status === 'decommissioned') throw new Conflict('The organization has been decommissioned.');
      await this.assertMayManageAgentsOf(trx, caller, orgId);
      if (current.status === 'suspended') return current;
      const organization = await updateOrganization(trx, orgId, { status: 'suspended' });
      const revokedTokens = await revokeLiveTokens(trx, { orgId }, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'org.suspended', orgId, actor: actorOf(caller), data: { revokedTokens } });
      return organization;
    });
  }

  /**
   * New issuance only: a grant that raced the suspension may have recorded a token after
   * the suspension revoked the others (inactive while suspended); it is revoked now rather
   * than coming back to life. Like a suspension, it takes every scope the agents hold.
   */
  async reactivate(caller: Caller, orgId: string): Promise<Organization> {
    return this.change(caller, orgId, async (trx, current) => {
      if (current.status === 'decommissioned') throw new Conflict('The organization has been decommissioned.');
      await this.assertMayManageAgentsOf(trx, caller, orgId);
      if (current.status === 'active') return current;
      await revokeLiveTokens(trx, { orgId }, this.deps.clock.now());
      const organization = await updateOrganization(trx, orgId, { status: 'active' });
      await appendAuditEvent(trx, { type: 'org.reactivated', orgId, actor: actorOf(caller) });
      return organization;
    });
  }

  /** Final: every agent is decommissioned, every credential and live token revoked. Repeating it changes nothing. */
  async decommission(caller: Caller, orgId: string): Promise<Organization> {
    return this.change(caller, orgId, async (trx, current) => {
      assertNotPlatform(current, 'decommissioned');
      if (current.status === 'decommissioned') return current;
      await this.assertMayManageAgentsOf(trx, caller, orgId);
      const now = new Date(this.deps.clock.now());
      const agentsOfOrg = trx('agents').where({ org_id: orgId }).select('id');
      const revokedTokens = await revokeLiveTokens(trx, { orgId }, now.getTime());
      const revokedCredentials = await trx('credentials').whereIn('agent_id', agentsOfOrg).whereNull('revoked_at').update({ revoked_at: now });
      const decommissionedAgents = await trx('agents')
        .where({ org_id: orgId })
        .whereNot({ status: 'decommissioned' })
        .update({ status: 'decommissioned', updated_at: trx.raw(`date_trunc('milliseconds', now())`) });
      const organization = await updateOrganization(trx, orgId, { status: 'decommissioned' });
      await appendAuditEvent(trx, {
        type: 'org.decommissioned',
        orgId,
        actor: actorOf(caller),
        data: { decommissionedAgents, revokedCredentials, revokedTokens },
      });
      return organization;
    });
  }

  /** This month's grants (total, top agents), refusals by reason, and agents against the limit. */
  async usage(caller: Caller, orgId: string): Promise<OrganizationUsage> {
    const organization = await this.get(caller, orgId);
    await this.deps.flushRefusals?.();
    const month = new Date(this.deps.clock.now()).toISOString().slice(0, 7);
    const [usage, agentCount] = await Promise.all([
      readMonthlyUsage(this.deps.knex, orgId, month, TOP_AGENTS),
      countLiveAgents(this.deps.knex, orgId),
    ]);
    return {
      orgId,
      month,
      tokens: { granted: usage.granted, limit: organization.limits.monthlyTokens, byAgent: usage.byAgent },
      refusals: usage.refusals,
      agents: { count: agentCount, limit: organization.limits.maxAgents },
    };
  }

  private async assertMayManageAgentsOf(trx: Knex.Transaction, caller: Caller, orgId: string): Promise<void> {
    const rows: { scope: string }[] = await trx('agents')
      .where({ org_id: orgId })
      .whereNot({ status: 'decommissioned' })
      .distinct(trx.raw('unnest(scopes) as scope'));
    assertMayManageAll(caller, rows.map((row) => row.scope));
  }

  private change<T>(caller: Caller, orgId: string, work: (trx: Knex.Transaction, current: Organization) => Promise<T>): Promise<T> {
    assertManagesOrganizations(caller);
    return this.deps.knex.transaction(async (trx) => {
      const current = await findOrganization(trx, orgId, true);
      if (!current) throw new NotFound('Organization');
      return work(trx, current);
    });
  }
}

/** admin:orgs, in the platform organization (or the operator, unconfined). */
function assertManagesOrganizations(caller: Caller): void {
  requireScope(caller, 'admin:orgs');
  if (!isCrossOrganization(caller)) throw new Forbidden('Managing organizations takes admin:orgs in the platform organization.');
}

function assertMayRead(caller: Caller, orgId: string): void {
  if (isCrossOrganization(caller)) return;
  if (!mayActIn(caller, orgId)) throw new NotFound('Organization');
  if (!holdsScope(caller, 'agents:read')) throw new InsufficientScope('agents:read');
}

function assertNotPlatform(organization: Organization, state: string): void {
  if (organization.isPlatform) throw new Conflict(`The platform organization cannot be ${state}.`);
}
