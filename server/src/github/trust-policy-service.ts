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
import { appendAuditEvent } from '../audit/audit-log.js';
import { Conflict, NotFound, ValidationFailed } from '../errors.js';
import { revokeLiveTokens } from '../oauth/token-store.js';
import {
  deleteTrustPolicy,
  findTrustPolicy,
  insertTrustPolicy,
  listTrustPolicies,
  type NewTrustPolicy,
  type StoredTrustPolicy,
} from './trust-policy-store.js';

export interface PolicyPageQuery {
  readonly agentId?: string;
  readonly afterId?: string;
  readonly limit: number;
}

export class TrustPolicyService {
  constructor(private readonly deps: { readonly knex: Knex; readonly clock: Clock }) {}

  async create(caller: Caller, policy: NewTrustPolicy): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      if (policy.agentId) {
        // Locked, so that its scopes cannot change between this check and the insert.
        const agent = await findAgent(trx, policy.agentId, true);
        if (!agent) throw new ValidationFailed('agentId does not name an existing agent.', {}, { field: 'agentId' });
        assertMayManage(caller, agent);
        if (agent.status === 'decommissioned') throw new Conflict('The agent has been decommissioned.');
        const lacking = policy.scopes?.find((scope) => !agent.scopes.includes(scope));
        if (lacking) throw new ValidationFailed(`The agent does not hold the scope '${lacking}'.`, {}, { field: 'scopes' });
      }
      assertMayDelegate(caller, policy.scopes ?? []);
      const created = await insertTrustPolicy(trx, policy);
      await appendAuditEvent(trx, { type: 'trust_policy.created', agentId: created.agentId, actor: actorOf(caller), data: { policy: created } });
      return created;
    });
  }

  async list(caller: Caller, query: PolicyPageQuery): Promise<{ policies: StoredTrustPolicy[]; hasMore: boolean }> {
    requireScope(caller, 'agents:read');
    return listTrustPolicies(this.deps.knex, query);
  }

  async get(caller: Caller, id: string): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:read');
    const policy = await findTrustPolicy(this.deps.knex, id);
    if (!policy) throw new NotFound('Trust policy');
    return policy;
  }

  async delete(caller: Caller, id: string): Promise<StoredTrustPolicy> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      const policy = await findTrustPolicy(trx, id, true);
      if (!policy) throw new NotFound('Trust policy');
      const agent = policy.agentId ? await findAgent(trx, policy.agentId, true) : undefined;
      if (agent) assertMayManage(caller, agent);
      assertMayDelegate(caller, policy.scopes ?? []);
      await deleteTrustPolicy(trx, id);
      // The tokens issued through it die with it.
      const revokedTokens = await revokeLiveTokens(trx, { trustPolicyId: id }, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'trust_policy.deleted', agentId: policy.agentId, actor: actorOf(caller), data: { policyId: id, revokedTokens } });
      return policy;
    });
  }
}
