/** Database access for organizations and their usage; returns domain objects, never rows. */
import type { Knex } from 'knex';
import { toOrganization, type Organization, type OrganizationLimits, type OrganizationRow, type OrganizationStatus } from './organization.js';

type Db = Knex | Knex.Transaction;

export interface NewOrganization {
  readonly id: string;
  readonly slug: string;
  readonly name: string;
  readonly limits: OrganizationLimits;
}

export async function insertOrganization(trx: Knex.Transaction, org: NewOrganization): Promise<Organization> {
  const [row] = await trx('organizations')
    .insert({
      id: org.id,
      slug: org.slug,
      name: org.name,
      monthly_tokens: org.limits.monthlyTokens,
      max_agents: org.limits.maxAgents,
      max_webhook_endpoints: org.limits.maxWebhookEndpoints,
    })
    .returning('*');
  return toOrganization(row);
}

export async function findOrganization(db: Db, orgId: string, forUpdate = false): Promise<Organization | undefined> {
  const query = db<OrganizationRow>('organizations').where({ id: orgId }).first();
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toOrganization(row) : undefined;
}

export async function findOrganizationBySlug(db: Db, slug: string): Promise<Organization | undefined> {
  const row = await db<OrganizationRow>('organizations').where({ slug }).first();
  return row ? toOrganization(row) : undefined;
}

// The platform organization's id never changes once the migration made it: one read per database.
const platformIds = new WeakMap<object, Promise<string>>();

export function platformOrgId(knex: Db): Promise<string> {
  let id = platformIds.get(knex);
  if (!id) {
    id = knex<OrganizationRow>('organizations')
      .where({ is_platform: true })
      .first('id')
      .then((row) => {
        if (!row) throw new Error('the platform organization is missing: run the migrations');
        return row.id;
      });
    id.catch(() => platformIds.delete(knex));
    platformIds.set(knex, id);
  }
  return id;
}

export interface OrganizationPageQuery {
  readonly limit: number;
  readonly after?: { createdAt: string; orgId: string };
  readonly status?: OrganizationStatus;
}

/** Oldest first, keyset-paginated on (created_at, id). */
export async function listOrganizations(db: Db, query: OrganizationPageQuery): Promise<{ organizations: Organization[]; hasMore: boolean }> {
  const rows: OrganizationRow[] = await db<OrganizationRow>('organizations')
    .modify((builder) => {
      if (query.status) builder.where('status', query.status);
      if (query.after) builder.whereRaw('(created_at, id) > (?::timestamptz, ?::uuid)', [query.after.createdAt, query.after.orgId]);
    })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .limit(query.limit + 1);
  return { organizations: rows.slice(0, query.limit).map(toOrganization), hasMore: rows.length > query.limit };
}

export interface OrganizationPatch {
  readonly slug?: string;
  readonly name?: string;
  readonly status?: OrganizationStatus;
  readonly limits?: Partial<OrganizationLimits>;
}

export async function updateOrganization(trx: Knex.Transaction, orgId: string, patch: OrganizationPatch): Promise<Organization> {
  const limits = patch.limits ?? {};
  const [row] = await trx('organizations')
    .where({ id: orgId })
    .update({
      ...(patch.slug !== undefined && { slug: patch.slug }),
      ...(patch.name !== undefined && { name: patch.name }),
      ...(patch.status !== undefined && { status: patch.status }),
      ...(limits.monthlyTokens !== undefined && { monthly_tokens: limits.monthlyTokens }),
      ...(limits.maxAgents !== undefined && { max_agents: limits.maxAgents }),
      ...(limits.maxWebhookEndpoints !== undefined && { max_webhook_endpoints: limits.maxWebhookEndpoints }),
      updated_at: trx.raw(`date_trunc('milliseconds', now())`),
    })
    .returning('*');
  return toOrganization(row);
}

/** Agents of the organization that count against maxAgents: every one not decommissioned. */
export async function countLiveAgents(db: Db, orgId: string): Promise<number> {
  const [{ count }] = await db('agents').where({ org_id: orgId }).whereNot({ status: 'decommissioned' }).count<{ count: string }[]>({ count: '*' });
  return Number(count);
}

export interface MonthlyUsage {
  readonly granted: number;
  readonly byAgent: { agentId: string; name: string; granted: number }[];
  readonly refusals: Record<string, number>;
}

/** Grants of `month` (e.g. 2026-11): the total, the top `top` agents, and refusals by reason. */
export async function readMonthlyUsage(db: Db, orgId: string, month: string, top: number): Promise<MonthlyUsage> {
  const [total, agents, refusals] = await Promise.all([
    db('org_token_quotas').where({ org_id: orgId, month }).first('count'),
    db('token_quotas as q')
      .join('agents as a', 'a.id', 'q.agent_id')
      .where({ 'a.org_id': orgId, 'q.month': month })
      .where('q.count', '>', 0)
      .orderBy([{ column: 'q.count', order: 'desc' }, { column: 'a.id' }])
      .limit(top)
      .select('a.id', 'a.name', 'q.count'),
    readMonthlyRefusals(db, orgId, month),
  ]);
  return {
    granted: Number(total?.count ?? 0),
    byAgent: agents.map((row: { id: string; name: string; count: number }) => ({ agentId: row.id, name: row.name, granted: Number(row.count) })),
    refusals,
  };
}

/** Grants refused in `month` (e.g. 2026-11), by reason, as stored (usage-refusals.ts flushes them). */
export async function readMonthlyRefusals(db: Db, orgId: string, month: string): Promise<Record<string, number>> {
  const rows: { reason: string; count: string }[] = await db('usage_refusals').where({ org_id: orgId, month }).orderBy('reason').select('reason', 'count');
  return Object.fromEntries(rows.map((row) => [row.reason, Number(row.count)]));
}

/** Adds refusal counts: `[orgId, month, reason, count]` rows, summed into the stored ones. */
/** Adds refusal counts; answers the (organization, month, reason) rows this call created: the month's first of each. */
export async function addUsageRefusals(db: Db, rows: readonly (readonly [string, string, string, number])[]): Promise<{ orgId: string; month: string; reason: string }[]> {
  if (rows.length === 0) return [];
  const result = await db.raw(
    `insert into usage_refusals as u (org_id, month, reason, count)
       select * from unnest(?::uuid[], ?::text[], ?::text[], ?::bigint[]) order by 1, 2, 3
       on conflict (org_id, month, reason) do update set count = u.count + excluded.count
       returning org_id, month, reason, (xmax = 0) as is_created`,
    [rows.map((row) => row[0]), rows.map((row) => row[1]), rows.map((row) => row[2]), rows.map((row) => row[3])],
  );
  return (result.rows as { org_id: string; month: string; reason: string; is_created: boolean }[])
    .filter((row) => row.is_created)
    .map((row) => ({ orgId: row.org_id, month: row.month, reason: row.reason }));
}
