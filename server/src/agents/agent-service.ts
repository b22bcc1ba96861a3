/**
 * Agents and their credentials: every rule of their lifecycle, the authorization of each
 * change (no escalation: authorization/escalation.ts), and the change and its audit row
 * in one transaction. The API and the CLI both call these; neither decides anything itself.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { actorOf, requireScope, type Caller } from '../authorization/caller.js';
import { assertMayManage } from '../authorization/escalation.js';
import { assertVisible, confinementOf } from '../authorization/tenancy.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import { Conflict, NotFound } from '../errors.js';
import { generateClientSecret } from '../oauth/client-secrets.js';
import { revokeLiveTokens } from '../oauth/token-store.js';
import { findOrganization } from '../tenancy/organization-store.js';
import { assertAcceptsChanges, assertMayAddAgent, assertScopesAllowedIn, organizationFor } from '../tenancy/organization-scope.js';
import type { Agent } from './agent.js';
import { findAgent, insertAgent, listAgents, updateAgent, type AgentPageQuery } from './agent-store.js';
import {
  insertCredential,
  listCredentials,
  revokeAllCredentials,
  revokeCredential as revokeStoredCredential,
  type Credential,
} from './credential-store.js';

export interface CreateAgentInput {
  /** The organization to create it in; the caller's own by default (the operator's: the platform). */
  readonly orgId?: string;
  readonly name: string;
  readonly description?: string | null;
  readonly scopes?: readonly string[];
}

export interface AgentDetailsPatch {
  readonly name?: string;
  readonly description?: string | null;
  readonly scopes?: readonly string[];
}

export interface NewCredential extends Credential {
  readonly clientSecret: string;
}

export type AgentListQuery = Omit<AgentPageQuery, 'orgId'> & { readonly orgId?: string };

export interface AgentServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
}

export class AgentService {
  constructor(private readonly deps: AgentServiceDeps) {}

  async create(caller: Caller, input: CreateAgentInput): Promise<Agent> {
    requireScope(caller, 'agents:write');
    const scopes = input.scopes ?? [];
    const agentId = crypto.randomUUID();
    assertMayManage(caller, { agentId, scopes: [] }, scopes);
    return this.deps.knex.transaction(async (trx) => {
      // Locked, so that concurrent creations count each other against maxAgents.
      const org = await organizationFor(trx, caller, input.orgId, true);
      await assertMayAddAgent(trx, org, scopes);
      const agent = await insertAgent(trx, { id: agentId, orgId: org.orgId, name: input.name, description: input.description ?? null, scopes });
      await appendAuditEvent(trx, { type: 'agent.created', agentId, orgId: org.orgId, actor: actorOf(caller), data: { name: agent.name, scopes: agent.scopes } });
      return agent;
    });
  }

  /** One organization's agents: the caller's own, or (admin:orgs in the platform organization) the one named. */
  async list(caller: Caller, query: AgentListQuery): Promise<{ agents: Agent[]; hasMore: boolean }> {
    requireScope(caller, 'agents:read');
    const org = await organizationFor(this.deps.knex, caller, query.orgId);
    return listAgents(this.deps.knex, { ...query, orgId: org.orgId });
  }

  async get(caller: Caller, agentId: string): Promise<Agent> {
    requireScope(caller, 'agents:read');
    return assertVisible(caller, await findAgent(this.deps.knex, agentId), 'Agent');
  }

  /**
   * Taking a scope away revokes the agent's live tokens, as suspension does: none of them
   * may keep a scope the agent lost. The audit row records each changed field's old and
   * new value.
   */
  async update(caller: Caller, agentId: string, patch: AgentDetailsPatch): Promise<Agent> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current, patch.scopes);
      assertNotDecommissioned(current);
      if (patch.scopes?.includes('admin:orgs')) {
        const org = await findOrganization(trx, current.orgId);
        if (org) assertScopesAllowedIn(org, patch.scopes);
      }
      const agent = await updateAgent(trx, agentId, patch);
      const changes = changesBetween(current, agent, Object.keys(patch) as (keyof AgentDetailsPatch)[]);
      const lostScopes = current.scopes.filter((scope) => !agent.scopes.includes(scope));
      const revokedTokens = lostScopes.length > 0 ? await revokeLiveTokens(trx, { agentId }, this.deps.clock.now()) : 0;
      await appendAuditEvent(trx, {
        type: 'agent.updated',
        agentId,
        actor: actorOf(caller),
        data: { changed: Object.keys(changes), changes, ...(lostScopes.length > 0 && { revokedTokens }) },
      });
      return agent;
    });
  }

  /** Suspension revokes the agent's live tokens: they stay dead after a reactivation. */
  async suspend(caller: Caller, agentId: string): Promise<Agent> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current);
      assertNotDecommissioned(current);
      if (current.status === 'suspended') return current;
      const agent = await updateAgent(trx, agentId, { status: 'suspended' });
      const revokedTokens = await revokeLiveTokens(trx, { agentId }, this.deps.clock.now());
      await appendAuditEvent(trx, { type: 'agent.suspended', agentId, actor: actorOf(caller), data: { revokedTokens } });
      return agent;
    });
  }

  /**
   * New tokens only: a grant that raced the suspension may have recorded a token after the
   * suspension revoked the others (inactive while the agent was suspended); it is revoked
   * now rather than coming back to life.
   */
  async reactivate(caller: Caller, agentId: string): Promise<Agent> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current);
      assertNotDecommissioned(current);
      if (current.status === 'active') return current;
      await revokeLiveTokens(trx, { agentId }, this.deps.clock.now());
      const agent = await updateAgent(trx, agentId, { status: 'active' });
      await appendAuditEvent(trx, { type: 'agent.reactivated', agentId, actor: actorOf(caller) });
      return agent;
    });
  }

  /** Final: every credential and live token dies with it. Repeating it changes nothing. */
  async decommission(caller: Caller, agentId: string): Promise<Agent> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current);
      if (current.status === 'decommissioned') return current;
      const nowMs = this.deps.clock.now();
      const agent = await updateAgent(trx, agentId, { status: 'decommissioned' });
      const revokedCredentials = await revokeAllCredentials(trx, agentId, nowMs);
      const revokedTokens = await revokeLiveTokens(trx, { agentId }, nowMs);
      await appendAuditEvent(trx, { type: 'agent.decommissioned', agentId, actor: actorOf(caller), data: { revokedCredentials, revokedTokens } });
      return agent;
    });
  }

  /** A new credential; its secret is in the result this once and stored only as a hash. */
  async createCredential(caller: Caller, agentId: string): Promise<NewCredential> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current);
      assertNotDecommissioned(current);
      // No new credential in a suspended organization (organization-scope.ts: new things only in an active one).
      const org = await findOrganization(trx, current.orgId);
      if (org) assertAcceptsChanges(org);
      const secret = generateClientSecret();
      const credential = await insertCredential(trx, current, secret);
      await appendAuditEvent(trx, { type: 'credential.created', agentId, actor: actorOf(caller), data: { credentialId: credential.credentialId } });
      return { ...credential, clientSecret: secret };
    });
  }

  async listCredentials(caller: Caller, agentId: string): Promise<Credential[]> {
    requireScope(caller, 'agents:read');
    const agent = assertVisible(caller, await findAgent(this.deps.knex, agentId), 'Agent');
    return listCredentials(this.deps.knex, agent);
  }

  /** Revokes one credential and the live tokens it obtained. */
  async revokeCredential(caller: Caller, agentId: string, credentialId: string): Promise<Credential> {
    return this.change(caller, agentId, async (trx, current) => {
      assertMayManage(caller, current);
      const nowMs = this.deps.clock.now();
      const revoked = await revokeStoredCredential(trx, current, credentialId, nowMs);
      if (!revoked) throw new NotFound('Credential');
      if (revoked.isNewlyRevoked) {
        await revokeLiveTokens(trx, { credentialId }, nowMs);
        await appendAuditEvent(trx, { type: 'credential.revoked', agentId, actor: actorOf(caller), data: { credentialId } });
      }
      return revoked.credential;
    });
  }

  /**
   * A change to one agent: agents:write, the agent locked for the transaction, and 404 when
   * there is none or it belongs to an organization the caller may not act in.
   */
  private change<T>(caller: Caller, agentId: string, work: (trx: Knex.Transaction, current: Agent) => Promise<T>): Promise<T> {
    requireScope(caller, 'agents:write');
    return this.deps.knex.transaction(async (trx) => {
      const current = assertVisible(caller, await findAgent(trx, agentId, true, confinementOf(caller)), 'Agent');
      return work(trx, current);
    });
  }
}

function assertNotDecommissioned(agent: Agent): void {
  if (agent.status === 'decommissioned') throw new Conflict('The agent has been decommissioned.');
}

/** `{field: {from, to}}` for each patched field whose value changed. */
function changesBetween(before: Agent, after: Agent, fields: readonly (keyof AgentDetailsPatch)[]): Record<string, { from: unknown; to: unknown }> {
  const changes: Record<string, { from: unknown; to: unknown }> = {};
  for (const field of fields) {
    const [from, to] = [before[field] ?? null, after[field] ?? null];
    if (JSON.stringify(from) !== JSON.stringify(to)) changes[field] = { from, to };
  }
  return changes;
}
