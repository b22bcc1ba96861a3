/** Database access for agents; returns domain objects, never rows. */
import type { Knex } from 'knex';
import { toAgent, type Agent, type AgentRow, type AgentStatus } from './agent.js';

export interface NewAgent {
  readonly id: string;
  readonly orgId: string;
  readonly name: string;
  readonly description: string | null;
  readonly scopes: readonly string[];
  readonly registeredRepositoryId?: string;
  readonly registeredRepository?: string;
}

export async function insertAgent(db: Knex | Knex.Transaction, agent: NewAgent): Promise<Agent> {
  const [row] = await db('agents')
    .insert({
      id: agent.id,
      org_id: agent.orgId,
      name: agent.name,
      description: agent.description,
      scopes: agent.scopes,
      registered_repository_id: agent.registeredRepositoryId ?? null,
      registered_repository: agent.registeredRepository ?? null,
    })
    .returning('*');
  return toAgent(row);
}

/** `withinOrg`: only an agent of that organization (so that another's is neither read nor locked). */
export async function findAgent(db: Knex | Knex.Transaction, agentId: string, forUpdate = false, withinOrg?: string): Promise<Agent | undefined> {
  const query = db<AgentRow>('agents')
    .where({ id: agentId, ...(withinOrg !== undefined && { org_id: withinOrg }) })
    .first();
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toAgent(row) : undefined;
}

export async function findRegisteredAgent(
  db: Knex | Knex.Transaction,
  orgId: string,
  repositoryId: string,
  name: string,
): Promise<Agent | undefined> {
  const row = await db<AgentRow>('agents').where({ org_id: orgId, registered_repository_id: repositoryId, name }).first();
  return row ? toAgent(row) : undefined;
}

export async function countAgents(db: Knex | Knex.Transaction): Promise<number> {
  const [{ count }] = await db('agents').count<{ count: number }[]>({ count: '*' });
  return Number(count);
}

export interface AgentPageQuery {
  readonly orgId: string;
  readonly limit: number;
  readonly after?: { createdAt: string; agentId: string };
  readonly status?: AgentStatus;
}

/** One organization's agents, oldest first, keyset-paginated on (created_at, id). */
export async function listAgents(db: Knex | Knex.Transaction, query: AgentPageQuery): Promise<{ agents: Agent[]; hasMore: boolean }> {
  const rows: AgentRow[] = await db<AgentRow>('agents')
    .where('org_id', query.orgId)
    .modify((builder) => {
      if (query.status) builder.where('status', query.status);
      if (query.after) {
        builder.whereRaw('(created_at, id) > (?::timestamptz, ?::uuid)', [query.after.createdAt, query.after.agentId]);
      }
    })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .limit(query.limit + 1);
  return { agents: rows.slice(0, query.limit).map(toAgent), hasMore: rows.length > query.limit };
}

export interface AgentPatch {
  readonly name?: string;
  readonly description?: string | null;
  readonly scopes?: readonly string[];
  readonly status?: AgentStatus;
}

export async function updateAgent(trx: Knex.Transaction, agentId: string, patch: AgentPatch): Promise<Agent> {
  const [row] = await trx('agents')
    .where({ id: agentId })
    .update({ ...patch, updated_at: trx.raw(`date_trunc('milliseconds', now())`) })
    .returning('*');
  return toAgent(row);
}
