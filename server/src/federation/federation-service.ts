/**
 * Federation partners (admin:orgs, platform organization) and bindings (agents:write in the
 * agent's organization): who may create, change or delete them, the rules a partner or a
 * binding must meet so that a shared issuer is never trusted wholesale, and each change with
 * its audit row in one transaction. Deleting or suspending a partner, or deleting a binding,
 * revokes the live tokens issued through it.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { findAgent } from '../agents/agent-store.js';
import { actorOf, holdsScope, requireScope, type Caller } from '../authorization/caller.js';
import { assertMayDelegate, assertMayManage } from '../authorization/escalation.js';
import { assertVisible, confinementOf, isCrossOrganization, mayActIn } from '../authorization/tenancy.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { Conflict, Forbidden, NotFound, ValidationFailed } from '../errors.js';
import { assertAcceptsChanges, organizationFor, organizationIdFor } from '../tenancy/organization-scope.js';
import { findOrganization } from '../tenancy/organization-store.js';
import type { Condition } from './conditions.js';
import { partnerFieldsOf, type CreateBindingInput, type CreatePartnerInput, type PartnerPatchInput } from './federation-input.js';
import {
  bindingIdsOfPartner,
  deleteBindings,
  deletePartner,
  findBinding,
  findPartner,
  insertBinding,
  insertPartner,
  listBindings,
  listPartners,
  revokeBindingTokens,
  revokePartnerTokens,
  updatePartner,
  type Binding,
  type Partner,
  type PartnerFields,
} from './federation-store.js';
import { PRESETS } from './presets.js';

export interface FederationServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
}

export class FederationService {
  constructor(private readonly deps: FederationServiceDeps) {}

  async createPartner(caller: Caller, input: CreatePartnerInput): Promise<Partner> {
    assertManagesPartners(caller);
    const fields = partnerFieldsOf(input);
    assertPartnerRules(fields);
    return this.deps.knex.transaction(async (trx) => {
      await assertOrganizationsExist(trx, fields.orgIds);
      const partner = await insertPartner(trx, crypto.randomUUID(), fields);
      await appendAuditEvent(trx, { type: 'federation.partner.created', actor: actorOf(caller), data: { partner: auditable(partner) } });
      return partner;
    });
  }

  /** A platform admin:orgs caller sees every partner; an organization's caller (agents:read) those open to it. */
  async listPartners(caller: Caller, query: { afterId?: string; limit: number }): Promise<{ partners: Partner[]; hasMore: boolean }> {
    if (isCrossOrganization(caller) && holdsScope(caller, 'admin:orgs')) return listPartners(this.deps.knex, query);
    requireScope(caller, 'agents:read');
    const orgId = await organizationIdFor(this.deps.knex, caller);
    const page = await listPartners(this.deps.knex, { ...query, openTo: orgId });
    return { ...page, partners: page.partners.map((partner) => asSeenBy(partner, orgId)) };
  }

  async getPartner(caller: Caller, partnerId: string): Promise<Partner> {
    const partner = await findPartner(this.deps.knex, partnerId);
    if (isCrossOrganization(caller) && holdsScope(caller, 'admin:orgs')) {
      if (!partner) throw new NotFound('Partner');
      return partner;
    }
    requireScope(caller, 'agents:read');
    const orgId = await organizationIdFor(this.deps.knex, caller);
    if (!partner || !partner.orgIds.includes(orgId)) throw new NotFound('Partner');
    return asSeenBy(partner, orgId);
  }

  /** A change to what the partner trusts (anything but its name) revokes the tokens issued through it: they were admitted under the old rules. */
  async updatePartner(caller: Caller, partnerId: string, patch: PartnerPatchInput): Promise<Partner> {
    return this.changePartner(caller, partnerId, async (trx, current) => {
      const fields: { -readonly [K in keyof PartnerFields]?: PartnerFields[K] } = { ...(patch as Partial<PartnerFields>) };
      // One key source at a time: setting one clears the other (the table holds at most one).
      if (fields.keys && fields.jwksUri === undefined) fields.jwksUri = null;
      if (fields.jwksUri && fields.keys === undefined) fields.keys = null;
      assertPartnerRules({ ...current, ...fields });
      if (fields.orgIds) await assertOrganizationsExist(trx, fields.orgIds);
      const partner = await updatePartner(trx, partnerId, fields);
      // A new name changes nothing it trusts.
      const isTrustChanged = Object.keys(patch).some((field) => field !== 'name');
      const revokedTokens = isTrustChanged ? await revokePartnerTokens(trx, partnerId, this.deps.clock.now()) : 0;
      await appendAuditEvent(trx, {
        type: 'federation.partner.updated',
        actor: actorOf(caller),
        data: { partnerId, changed: Object.keys(patch), revokedTokens },
      });
      return partner;
    });
  }

  async suspendPartner(caller: Caller, partnerId: string): Promise<Partner> {
    return this.changePartner(caller, partnerId, async (trx, current) => {
      if (current.status === 'suspended') return current;
      const partner = await updatePartner(trx, partnerId, { status: 'suspended' });
      const revokedTokens = await revokePartnerTokens(trx, partnerId, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'federation.partner.suspended', actor: actorOf(caller), data: { partnerId, revokedTokens } });
      return partner;
    });
  }

  /** New grants only: the tokens revoked by the suspension stay revoked. */
  async reactivatePartner(caller: Caller, partnerId: string): Promise<Partner> {
    return this.changePartner(caller, partnerId, async (trx, current) => {
      if (current.status === 'active') return current;
      await revokePartnerTokens(trx, partnerId, this.deps.clock.now());
      const partner = await updatePartner(trx, partnerId, { status: 'active' });
      await appendAuditEvent(trx, { type: 'federation.partner.reactivated', actor: actorOf(caller), data: { partnerId } });
      return partner;
    });
  }

  /** The partner, its bindings, and the live tokens issued through them. */
  async deletePartner(caller: Caller, partnerId: string): Promise<Partner> {
    return this.changePartner(caller, partnerId, async (trx, current) => {
      const bindingIds = await bindingIdsOfPartner(trx, partnerId);
      const revokedTokens = await revokeBindingTokens(trx, bindingIds, this.deps.clock.now());
      await deleteBindings(trx, { partnerId });
      await deletePartner(trx, partnerId);
      await appendAuditEvent(trx, {
        type: 'federation.partner.deleted',
        actor: actorOf(caller),
        data: { partnerId, deletedBindings: bindingIds.length, revokedTokens },
      });
      return current;
    });
  }

  /**
   * A binding lets the partner's tokens act for one agent, in the agent's organization,
   * which the partner must be open to. As for trust policies: agents:write, and the agent
   * and what the binding lets a workload obtain within the caller's scopes.
   */
  async createBinding(caller: Caller, input: CreateBindingInput): Promise<Binding> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      const agent = await findAgent(trx, input.agentId, true, confinementOf(caller));
      if (!agent || !mayActIn(caller, agent.orgId)) throw new ValidationFailed('agentId does not name an existing agent.', {}, { field: 'agentId' });
      assertMayManage(caller, agent);
      if (agent.status === 'decommissioned') throw new Conflict('The agent has been decommissioned.');
      const org = await findOrganization(trx, agent.orgId);
      if (org) assertAcceptsChanges(org);
      const partner = await findPartner(trx, input.partnerId);
      // A partner not open to the agent's organization is as unknown as a missing one.
      if (!partner || !partner.orgIds.includes(agent.orgId)) {
        throw new ValidationFailed("partnerId does not name a partner open to the agent's organization.", {}, { field: 'partnerId' });
      }
      assertIdentifies(partner, input.conditions as Condition[]);
      const lacking = input.scopes?.find((scope) => !agent.scopes.includes(scope));
      if (lacking) throw new ValidationFailed(`The agent does not hold the scope '${lacking}'.`, {}, { field: 'scopes' });
      assertMayDelegate(caller, input.scopes ?? []);
      const binding = await insertBinding(trx, {
        id: crypto.randomUUID(),
        orgId: agent.orgId,
        partnerId: partner.partnerId,
        agentId: agent.agentId,
        conditions: input.conditions as Condition[],
        scopes: input.scopes ?? null,
        maxTtlSeconds: input.maxTtlSeconds ?? null,
      });
      await appendAuditEvent(trx, { type: 'federation.binding.created', agentId: agent.agentId, orgId: agent.orgId, actor: actorOf(caller), data: { binding } });
      return binding;
    });
  }

  async listBindings(
    caller: Caller,
    query: { orgId?: string; agentId?: string; partnerId?: string; afterId?: string; limit: number },
  ): Promise<{ bindings: Binding[]; hasMore: boolean }> {
    requireScope(caller, 'agents:read');
    const { orgId } = await organizationFor(this.deps.knex, caller, query.orgId);
    return listBindings(this.deps.knex, { ...query, orgId });
  }

  async getBinding(caller: Caller, bindingId: string): Promise<Binding> {
    requireScope(caller, 'agents:read');
    return assertVisible(caller, await findBinding(this.deps.knex, bindingId, false, confinementOf(caller)), 'Binding');
  }

  /** The binding and the live tokens issued through it. */
  async deleteBinding(caller: Caller, bindingId: string): Promise<Binding> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      const binding = assertVisible(caller, await findBinding(trx, bindingId, true, confinementOf(caller)), 'Binding');
      const agent = await findAgent(trx, binding.agentId, true);
      if (agent) assertMayManage(caller, agent);
      assertMayDelegate(caller, binding.scopes ?? []);
      const revokedTokens = await revokeBindingTokens(trx, [bindingId], this.deps.clock.now());
      await deleteBindings(trx, { bindingId });
      await appendAuditEvent(trx, {
        type: 'federation.binding.deleted',
        agentId: binding.agentId,
        orgId: binding.orgId,
        actor: actorOf(caller),
        data: { bindingId, revokedTokens },
      });
      return binding;
    });
  }

  private changePartner<T>(caller: Caller, partnerId: string, work: (trx: Knex.Transaction, current: Partner) => Promise<T>): Promise<T> {
    assertManagesPartners(caller);
    return this.deps.knex.transaction(async (trx) => {
      const current = await findPartner(trx, partnerId, true);
      if (!current) throw new NotFound('Partner');
      return work(trx, current);
    });
  }
}

/** A partner as a tenant sees it: open to its own organization, the others it is open to left out. */
function asSeenBy(partner: Partner, orgId: string): Partner {
  return { ...partner, orgIds: [orgId] };
}

/** admin:orgs, in the platform organization (or the operator, unconfined). */
function assertManagesPartners(caller: Caller): void {
  requireScope(caller, 'admin:orgs');
  if (!isCrossOrganization(caller)) throw new Forbidden('Managing federation partners takes admin:orgs in the platform organization.');
}

/**
 * A condition that names something: `eq` or `in`, or a glob with at least one literal
 * character besides `/` (a pattern of stars and slashes alone names nothing at all).
 */
function isNaming(condition: Condition): boolean {
  if (condition.op !== 'glob') return true;
  return /[^*/]/.test(condition.value as string);
}

/** A preset that names pins (a shared issuer): the partner must condition one of them, naming a tenant. */
function assertPartnerRules(fields: Pick<PartnerFields, 'preset' | 'requiredClaims'>): void {
  const { requiredPins } = PRESETS[fields.preset];
  if (requiredPins.length > 0 && !fields.requiredClaims.some((condition) => requiredPins.includes(condition.claim) && isNaming(condition))) {
    throw new ValidationFailed(`A ${fields.preset} partner must pin one of these claims in requiredClaims: ${requiredPins.join(', ')}.`, {}, { field: 'requiredClaims' });
  }
}

/** A binding names the workload: at least one condition on a claim its partner's preset calls identifying. */
function assertIdentifies(partner: Partner, conditions: readonly Condition[]): void {
  const { identifyingClaims } = PRESETS[partner.preset];
  if (!conditions.some((condition) => identifyingClaims.includes(condition.claim) && isNaming(condition))) {
    throw new ValidationFailed(`A binding must put a condition on one of these claims: ${identifyingClaims.join(', ')}.`, {}, { field: 'conditions' });
  }
}

async function assertOrganizationsExist(trx: Knex.Transaction, orgIds: readonly string[]): Promise<void> {
  for (const orgId of orgIds) {
    if (!(await findOrganization(trx, orgId))) throw new ValidationFailed(`orgIds names no organization ${orgId}.`, {}, { field: 'orgIds' });
  }
}

/** A partner as the audit log records it: its keys by id only. */
function auditable(partner: Partner): Record<string, unknown> {
  return { ...partner, keys: partner.keys ? { kids: partner.keys.keys.map((key) => key.kid ?? null) } : null };
}
