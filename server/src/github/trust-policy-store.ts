/** Database access for trust policies; returns domain objects, never rows. */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { TrustPolicy } from './trust-policy.js';
import type { IdentityBinding } from './match-trust-policy.js';

export interface StoredTrustPolicy extends TrustPolicy {
  /** The organization of its agent, or, for a registration policy, the one its agents are made in. */
  readonly orgId: string;
  readonly createdAt: string;
}

export type NewTrustPolicy = Omit<TrustPolicy, 'id'> & { readonly orgId: string };

export interface PolicyRow {
  id: string;
  org_id: string;
  provider: 'github';
  repository: string;
  agent_id: string | null;
  branch: string | null;
  tag: string | null;
  environment: string | null;
  workflow_ref: string | null;
  job_workflow_ref: string | null;
  repository_id: string | null;
  repository_owner_id: string | null;
  allowed_events: string[];
  scopes: string[] | null;
  created_at: Date | string;
}

export const toPolicy = (row: PolicyRow): StoredTrustPolicy => ({
  id: row.id,
  orgId: row.org_id,
  provider: row.provider,
  repository: row.repository,
  agentId: row.agent_id,
  branch: row.branch,
  tag: row.tag,
  environment: row.environment,
  workflowRef: row.workflow_ref,
  jobWorkflowRef: row.job_workflow_ref,
  repositoryId: row.repository_id,
  repositoryOwnerId: row.repository_owner_id,
  allowedEvents: row.allowed_events,
  scopes: row.scopes,
  createdAt: new Date(row.created_at).toISOString(), // a Date, or its JSON text inside a json_agg
});

export async function insertTrustPolicy(db: Knex | Knex.Transaction, policy: NewTrustPolicy): Promise<StoredTrustPolicy> {
  const [row] = await db('trust_policies')
    .insert({
      id: crypto.randomUUID(),
      org_id: policy.orgId,
      provider: policy.provider,
      repository: policy.repository,
      agent_id: policy.agentId,
      branch: policy.branch ?? null,
      tag: policy.tag ?? null,
      environment: policy.environment ?? null,
      workflow_ref: policy.workflowRef ?? null,
      job_workflow_ref: policy.jobWorkflowRef ?? null,
      repository_id: policy.repositoryId ?? null,
      repository_owner_id: policy.repositoryOwnerId ?? null,
      allowed_events: policy.allowedEvents,
      scopes: policy.scopes ?? null,
    })
    .returning('*');
  return toPolicy(row);
}

/** `withinOrg`: only a policy of that organization (so that another's is neither read nor locked). */
export async function findTrustPolicy(db: Knex | Knex.Transaction, id: string, forUpdate = false, withinOrg?: string): Promise<StoredTrustPolicy | undefined> {
  const query = db<PolicyRow>('trust_policies')
    .where({ id, ...(withinOrg !== undefined && { org_id: withinOrg }) })
    .first();
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toPolicy(row) : undefined;
}

export async function listTrustPolicies(
  db: Knex | Knex.Transaction,
  query: { orgId: string; agentId?: string; afterId?: string; limit: number },
): Promise<{ policies: StoredTrustPolicy[]; hasMore: boolean }> {
  const rows: PolicyRow[] = await db<PolicyRow>('trust_policies')
    .where('org_id', query.orgId)
    .modify((builder) => {
      if (query.agentId) builder.where('agent_id', query.agentId);
      if (query.afterId) builder.where('id', '>', query.afterId);
    })
    .orderBy('id')
    .limit(query.limit + 1);
  return { policies: rows.slice(0, query.limit).map(toPolicy), hasMore: rows.length > query.limit };
}

export async function deleteTrustPolicy(trx: Knex.Transaction, id: string): Promise<StoredTrustPolicy | undefined> {
  const [row] = await trx('trust_policies').where({ id }).delete().returning('*');
  return row ? toPolicy(row) : undefined;
}

export const ASCII_FOLD = `translate(repository, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')`;

/** A repository name as the policy index keys it: ASCII letters lower-cased, nothing else touched. */
export const foldRepository = (repository: string): string => repository.replace(/[A-Z]/g, (letter) => letter.toLowerCase());

/**
 * The policies of one repository (ASCII case ignored, as GitHub does) for one agent (null:
 * registration policies), leaving out those of decommissioned organizations.
 */
export async function findPoliciesFor(db: Knex | Knex.Transaction, repository: string, agentId: string | null): Promise<StoredTrustPolicy[]> {
  const rows: PolicyRow[] = await db<PolicyRow>('trust_policies')
    .whereRaw(`${ASCII_FOLD} = ?`, [foldRepository(repository)])
    .modify((builder) => (agentId === null ? builder.whereNull('agent_id') : builder.where('agent_id', agentId)))
    .whereIn('org_id', db('organizations').whereNot({ status: 'decommissioned' }).select('id'));
  return rows.map(toPolicy);
}

/**
 * Pins the ids a policy did not name yet: `bound` when this call pinned one, `unchanged` when
 * the policy already names these ids (a concurrent exchange pinned the same values first),
 * `conflict` when it names others (or is gone): the exchange is refused then.
 */
export async function bindRepositoryIdentity(db: Knex | Knex.Transaction, binding: IdentityBinding): Promise<'bound' | 'unchanged' | 'conflict'> {
  const repositoryId = binding.repositoryId ?? null;
  const ownerId = binding.repositoryOwnerId ?? null;
  const consistent = `(repository_id is null or repository_id = coalesce(?::text, repository_id))
        and (repository_owner_id is null or repository_owner_id = coalesce(?::text, repository_owner_id))`;
  const result = await db.raw(
    `update trust_policies
        set repository_id = coalesce(repository_id, ?::text), repository_owner_id = coalesce(repository_owner_id, ?::text)
      where id = ?
        and ${consistent}
        -- Only when it pins something: a policy pinned already is not bound (nor audited) again.
        and (repository_id is null and ?::text is not null or repository_owner_id is null and ?::text is not null)`,
    [repositoryId, ownerId, binding.policyId, repositoryId, ownerId, repositoryId, ownerId],
  );
  if (result.rowCount === 1) return 'bound';
  // Nothing to pin, or pinned meanwhile: read what the policy names now (committed, as the update saw it).
  const check = await db.raw(`select ${consistent} as ok from trust_policies where id = ?`, [repositoryId, ownerId, binding.policyId]);
  return check.rows[0]?.ok === true ? 'unchanged' : 'conflict';
}
