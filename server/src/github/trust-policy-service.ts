/**
 * Trust policies, for the API, the CLI and registration alike: who may create or delete
 * one (agents:write, and no escalation: the policy's agent and whatever the policy lets a
 * workflow obtain must be within the caller's scopes), and the change with its audit row
 * in one transaction.
 */
import type { Knex } from 'knex';
import type { Clock } from '../clock.js';
import { findAgent } from '../agents/agent-store.js';
import { actorOf, requireScope, type Caller } from '../authorization/caller.js';
import { assertMayDelegate, assertMayManage } from '../authorization/escalation.js';
import { assertVisible, confinementOf, mayActIn } from '../authorization/tenancy.js';
import { assertAcceptsChanges, assertScopesAllowedIn, organizationFor } from '../tenancy/organization-scope.js';
import { findOrganization } from '../tenancy/organization-store.js';
import type { TrustPolicyInput } from './trust-policy-input.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import { Conflict, ValidationFailed } from '../errors.js';
import { revokeLiveTokens } from '../oauth/token-store.js';
import {
  deleteTrustPolicy,
  findTrustPolicy,
  insertTrustPolicy,
  listTrustPolicies,
  type StoredTrustPolicy,
} from './trust-policy-store.js';

export interface PolicyPageQuery {
  /** The caller's own organization by default. */
  readonly orgId?: string;
  readonly agentId?: string;
  readonly afterId?: string;
  readonly limit: number;
}

export class TrustPolicyService {
  constructor(private readonly deps: { readonly knex: Knex; readonly clock: Clock }) {}

  /** A policy for an agent is in the agent's organization; a registration policy in the one named, or the caller's. */
  async create(caller: Caller, input: TrustPolicyInput): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      let orgId: string;
      if (input.agentId) {
        // Locked, so that its scopes cannot change between this check and the insert.
        const agent = await findAgent(trx, input.agentId, true, confinementOf(caller));
        // Another organization's agent is as unknown as a missing one.
        if (!agent || !mayActIn(caller, agent.orgId)) throw new ValidationFailed('agentId does not name an existing agent.', {}, { field: 'agentId' });
        if (input.orgId !== undefined && input.orgId !== agent.orgId) {
          throw new ValidationFailed("orgId must be the agent's organization (or left out).", {}, { field: 'orgId' });
        }
        assertMayManage(caller, agent);
        if (agent.status === 'decommissioned') throw new Conflict('The agent has been decommissioned.');
        const org = await findOrganization(trx, agent.orgId);
        if (org) assertAcceptsChanges(org);
        const lacking = input.scopes?.find((scope) => !agent.scopes.includes(scope));
        if (lacking) throw new ValidationFailed(`The agent does not hold the scope '${lacking}'.`, {}, { field: 'scopes' });
        orgId = agent.orgId;
      } else {
        const org = await organizationFor(trx, caller, input.orgId);
        assertAcceptsChanges(org);
        // What a registration policy grants, its agents will hold.
        assertScopesAllowedIn(org, input.scopes);
        orgId = org.orgId;
      }
      assertMayDelegate(caller, input.scopes ?? []);
      const created = await insertTrustPolicy(trx, { ...input, orgId });
      await appendAuditEvent(trx, { type: 'trust_policy.created', agentId: created.agentId, orgId, actor: actorOf(caller), data: { policy: created } });
      return created;
    });
  }

  async list(caller: Caller, query: PolicyPageQuery): Promise<{ policies: StoredTrustPolicy[]; hasMore: boolean }> {
    requireScope(caller, 'agents:read');
    const org = await organizationFor(this.deps.knex, caller, query.orgId);
    return listTrustPolicies(this.deps.knex, { ...query, orgId: org.orgId });
  }

  async get(caller: Caller, id: string): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:read');
    return assertVisible(caller, await findTrustPolicy(this.deps.knex, id), 'Trust policy');
  }

  async delete(caller: Caller, id: string): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      const policy = assertVisible(caller, await findTrustPolicy(trx, id, true, confinementOf(caller)), 'Trust policy');
      const agent = policy.agentId ? await findAgent(trx, policy.agentId, true) : undefined;
      if (agent) assertMayManage(caller, agent);
      assertMayDelegate(caller, policy.scopes ?? []);
      await deleteTrustPolicy(trx, id);
      // The tokens issued through it die with it.
      const revokedTokens = await revokeLiveTokens(trx, { trustPolicyId: id }, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'trust_policy.deleted', agentId: policy.agentId, orgId: policy.orgId, actor: actorOf(caller), data: { policyId: id, revokedTokens } });
      return policy;
    });
  }
}
