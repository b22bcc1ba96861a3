/** Agent and credential lifecycle: the rules, each change audited in its own transaction. */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import { conflict, notFound } from '../http/errors.js';
import type { Agent } from './agent.js';
import { findAgent, insertAgent, revokeLiveTokensOfAgent, updateAgent, type AgentPatch } from './agent-store.js';
import {
  generateClientSecret,
  insertCredential,
  revokeAllCredentials,
  revokeCredential as revokeStoredCredential,
  type Credential,
} from './credential-store.js';

export interface CreateAgentInput {
  readonly name: string;
  readonly description?: string | null;
  readonly scopes?: readonly string[];
}

export async function createAgent(knex: Knex, input: CreateAgentInput, actor: string): Promise<Agent> {
  return knex.transaction(async (trx) => {
    const agent = await insertAgent(trx, {
      id: crypto.randomUUID(),
      name: input.name,
      description: input.description ?? null,
      scopes: input.scopes ?? [],
    });
    await appendAuditEvent(trx, { type: 'agent.created', agentId: agent.agentId, actor, data: { name: agent.name, scopes: agent.scopes } });
    return agent;
  });
}

async function lockAgent(trx: Knex.Transaction, agentId: string): Promise<Agent> {
  const agent = await findAgent(trx, agentId, true);
  if (!agent) throw notFound('Agent');
  return agent;
}

function assertNotDecommissioned(agent: Agent): void {
  if (agent.status === 'decommissioned') throw conflict('The agent has been decommissioned.');
}

export async function updateAgentDetails(knex: Knex, agentId: string, patch: AgentPatch, actor: string): Promise<Agent> {
  return knex.transaction(async (trx) => {
    assertNotDecommissioned(await lockAgent(trx, agentId));
    const agent = await updateAgent(trx, agentId, patch);
    await appendAuditEvent(trx, { type: 'agent.updated', agentId, actor, data: { changed: Object.keys(patch) } });
    return agent;
  });
}

/** Suspension revokes the agent's live tokens: they stay dead after a reactivation. */
export async function suspendAgent(knex: Knex, agentId: string, actor: string): Promise<Agent> {
  return knex.transaction(async (trx) => {
    const current = await lockAgent(trx, agentId);
    assertNotDecommissioned(current);
    if (current.status === 'suspended') return current;
    const agent = await updateAgent(trx, agentId, { status: 'suspended' });
    const revokedTokens = await revokeLiveTokensOfAgent(trx, agentId);
    await appendAuditEvent(trx, { type: 'agent.suspended', agentId, actor, data: { revokedTokens } });
    return agent;
  });
}

export async function reactivateAgent(knex: Knex, agentId: string, actor: string): Promise<Agent> {
  return knex.transaction(async (trx) => {
    const current = await lockAgent(trx, agentId);
    assertNotDecommissioned(current);
    if (current.status === 'active') return current;
    const agent = await updateAgent(trx, agentId, { status: 'active' });
    await appendAuditEvent(trx, { type: 'agent.reactivated', agentId, actor });
    return agent;
  });
}

/** Final: every credential and live token dies with it. Repeating it changes nothing. */
export async function decommissionAgent(knex: Knex, agentId: string, actor: string): Promise<Agent> {
  return knex.transaction(async (trx) => {
    const current = await lockAgent(trx, agentId);
    if (current.status === 'decommissioned') return current;
    const agent = await updateAgent(trx, agentId, { status: 'decommissioned' });
    const revokedCredentials = await revokeAllCredentials(trx, agentId);
    const revokedTokens = await revokeLiveTokensOfAgent(trx, agentId);
    await appendAuditEvent(trx, { type: 'agent.decommissioned', agentId, actor, data: { revokedCredentials, revokedTokens } });
    return agent;
  });
}

export interface NewCredential extends Credential {
  readonly clientSecret: string;
}

export async function createCredential(
  knex: Knex,
  agentId: string,
  actor: string,
  secret: string = generateClientSecret(),
): Promise<NewCredential> {
  return knex.transaction(async (trx) => {
    assertNotDecommissioned(await lockAgent(trx, agentId));
    const credential = await insertCredential(trx, agentId, secret);
    await appendAuditEvent(trx, { type: 'credential.created', agentId, actor, data: { credentialId: credential.credentialId } });
    return { ...credential, clientSecret: secret };
  });
}

export async function revokeCredential(knex: Knex, agentId: string, credentialId: string, actor: string): Promise<Credential> {
  return knex.transaction(async (trx) => {
    await lockAgent(trx, agentId);
    const revoked = await revokeStoredCredential(trx, agentId, credentialId);
    if (!revoked) throw notFound('Credential');
    if (revoked.isNewlyRevoked) {
      await appendAuditEvent(trx, { type: 'credential.revoked', agentId, actor, data: { credentialId } });
    }
    return revoked.credential;
  });
}
