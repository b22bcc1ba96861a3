/**
 * Organizations: tenants, each with its own agents, policies, audit events and limits.
 *
 * - `organizations`, and in it the platform organization (`is_platform`, slug `platform`),
 *   which receives every agent, trust policy (registration policies too) that exists now.
 *   Credentials and tokens belong to their agent's organization.
 * - `audit_events.org_id`: null means the platform organization, and only rows written
 *   before this migration may have it (the check below is NOT VALID: old rows are not
 *   checked, every new row is). The chain hash covers `orgId` when it is set
 *   (audit/audit-chain.ts), so the rows already linked keep their hashes, and moving an
 *   event to another organization breaks the chain.
 * - `org_token_quotas` counts an organization's grants per calendar month (UTC), next to
 *   the per-agent `token_quotas`; both now count every grant, limit or not, for
 *   `GET /orgs/{id}/usage`. This month's and earlier counts of the per-agent table (kept
 *   only while MONTHLY_TOKEN_LIMIT was on) become the platform organization's.
 * - `usage_refusals`: refused grants per organization, month and reason (usage).
 * - issue_grants also refuses grants of agents whose organization is not active, and
 *   decides the organization's monthly limit in the same statement as the agent's.
 */
import type { Knex } from 'knex';
import { createIssueGrants as createPreviousIssueGrants } from './20261130130000_token_provenance.js';

const PREVIOUS_SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[])`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('organizations', (t) => {
    t.uuid('id').primary();
    t.text('slug').notNullable().unique();
    t.text('name').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.boolean('is_platform').notNullable().defaultTo(false);
    // null: no limit.
    t.integer('monthly_tokens');
    t.integer('max_agents');
    t.integer('max_webhook_endpoints');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw(`date_trunc('milliseconds', now())`));
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.raw(`date_trunc('milliseconds', now())`));
  });
  await knex.raw(`alter table organizations add constraint organizations_status_check check (status in ('active','suspended','decommissioned'))`);
  await knex.raw(`alter table organizations add constraint organizations_slug_check check (slug ~ '^[a-z0-9-]{2,63}$')`);
  await knex.raw(
    `alter table organizations add constraint organizations_limits_check
       check (coalesce(monthly_tokens, 0) >= 0 and coalesce(max_agents, 0) >= 0 and coalesce(max_webhook_endpoints, 0) >= 0)`,
  );
  // One platform organization, and it is never suspended or decommissioned.
  await knex.raw(`create unique index organizations_one_platform on organizations (is_platform) where is_platform`);
  await knex.raw(`alter table organizations add constraint organizations_platform_active check (not is_platform or status = 'active')`);
  await knex.raw(
    `insert into organizations (id, slug, name, is_platform) values (gen_random_uuid(), 'platform', 'Platform', true)`,
  );
  const platform = knex.raw(`(select id from organizations where is_platform)`);

  for (const table of ['agents', 'trust_policies']) {
    await knex.schema.alterTable(table, (t) => t.uuid('org_id').references('organizations.id'));
    await knex(table).update({ org_id: platform });
    await knex.raw(`alter table ${table} alter column org_id set not null`);
  }
  await knex.raw(`create index agents_by_org on agents (org_id, created_at, id)`);
  await knex.raw(`create index trust_policies_by_org on trust_policies (org_id, id)`);
  // register-agent is idempotent per organization, repository id and agent name.
  await knex.raw(`drop index agents_registered_name`);
  await knex.raw(
    `create unique index agents_registered_name on agents (org_id, registered_repository_id, name) where registered_repository_id is not null`,
  );

  await knex.schema.alterTable('audit_events', (t) => t.uuid('org_id'));
  await knex.raw(`alter table audit_events add constraint audit_events_org_named check (org_id is not null or chain_seq is not null) not valid`);
  await knex.raw(`create index audit_events_by_org on audit_events (org_id, id)`);

  await knex.schema.createTable('org_token_quotas', (t) => {
    t.uuid('org_id').notNullable();
    t.text('month').notNullable();
    t.integer('count').notNullable();
    t.primary(['org_id', 'month']);
  });
  await knex.raw(
    `insert into org_token_quotas (org_id, month, count) select ${platform.toQuery()}, month, sum(count) from token_quotas group by month`,
  );
  await knex.schema.createTable('usage_refusals', (t) => {
    t.uuid('org_id').notNullable();
    t.text('month').notNullable();
    t.text('reason').notNullable();
    t.bigInteger('count').notNullable();
    t.primary(['org_id', 'month', 'reason']);
  });

  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await createIssueGrants(knex);
}

/**
 * issue_grants with organizations. Each grant, in order, as if it ran alone:
 *   gate        credential live and the agent's, agent active and holding the scopes, its
 *               organization active, its trust policies still there;
 *   rate        the agent's one-minute window (p_rate_limit > 0);
 *   quota       the agent's month: counted always, refused past p_monthly_limit (> 0);
 *   org_quota   the organization's month: counted always, refused past its monthly_tokens.
 * The counters are raised only by the grants that pass every step. Rows are locked in a
 * fixed order (agent quotas by agent, then organization quotas by organization), so two
 * batches cannot deadlock. `refusal` names the step that refused a grant.
 */
async function createIssueGrants(knex: Knex): Promise<void> {
  await knex.raw(issueGrantsSql({ withBindings: false }));
}

/**
 * The statement that creates this issue_grants; `withBindings` (migration
 * 20261203090000_federation) adds one argument, `p_binding uuid[]`: the federation binding a
 * grant came through, which the gate requires to exist for the agent with its partner active,
 * and which the token records. `withPartnerRevision` (migration
 * 20261204090000_federation_partner_revision, which needs `withBindings`) adds
 * `p_partner_revision int[]`: the revision of the partner the grant's token was verified
 * against, which the gate requires to be the current one, holding the partner row share-locked
 * until the grant commits. `withUsedJtis` (migration 20261207090000_grant_spends_jti, which
 * needs both) adds `p_used_jti text[], p_used_jti_exp float8[]`, both defaulting to null: the
 * single-use token (a GitHub ID token, a partner's subject token) each grant spends, refused
 * with `replay` when it was spent before. Without any the text is exactly this migration's.
 */
export function issueGrantsSql({
  withBindings,
  withPartnerRevision = false,
  withUsedJtis = false,
}: {
  readonly withBindings: boolean;
  readonly withPartnerRevision?: boolean;
  readonly withUsedJtis?: boolean;
}): string {
  const binding = (text: string) => (withBindings ? text : '');
  const revision = (text: string) => (withPartnerRevision ? text : '');
  const usedJtis = (text: string) => (withUsedJtis ? text : '');
  return `
    create or replace function issue_grants(
      p_agent uuid[], p_credential uuid[], p_scopes text[], p_window_start bigint[], p_rate_limit int,
      p_month text[], p_monthly_limit int, p_jti uuid[], p_grant_type text[], p_issued_at bigint[],
      p_expires_at bigint[], p_audit_type text[], p_audit_actor text[], p_audit_data jsonb[], p_trust_policies text[]${binding(', p_binding uuid[]')}${revision(', p_partner_revision int[]')}${usedJtis(`,
      p_used_jti text[] default null, p_used_jti_exp float8[] default null`)})
    returns table (ord int, gate int, rate_count int, quota_count int, org_quota_count int, org_limit int, refusal text, issued int)
    language plpgsql as $fn$
    #variable_conflict use_column
    declare
      n int := coalesce(array_length(p_agent, 1), 0);
      orgs uuid[];          -- orgs[i]: the organization of grant i's agent
      limits int[];         -- limits[i]: that organization's monthly_tokens (null: none)
      passed boolean[];     -- passed[i]: grant i got through the gate
      rated boolean[];      -- ... and its rate window
      fits boolean[];       -- ... and its agent's month
      admitted boolean[];   -- ... and its organization's month
      rates int[]; quotas int[]; org_quotas int[];
      q_agent uuid[]; q_month text[]; q_before int[];
      o_org uuid[]; o_month text[]; o_before int[];
      q_settled bigint[];   -- for a grant refused by a month: its agent's admitted grants before it${usedJtis(`
      fresh boolean[];      -- fresh[i]: grant i spent its single-use token, or carries none (null: no grant carries one)`)}
    begin
      -- Scope tokens never contain a space (RFC 6749 §3.3).
      select array_agg(x.ok order by x.i), array_agg(x.org order by x.i), array_agg(x.lim order by x.i)
        into passed, orgs, limits
        from (
          select g.i, ag.org_id as org, o.monthly_tokens as lim,
                 coalesce(ag.status = 'active' and o.status = 'active' and ag.scopes @> string_to_array(g.scopes, ' '), false)
                 and (g.credential is null or exists (select 1 from credentials c where c.id = g.credential
                           and c.agent_id = g.agent and c.revoked_at is null))
                 -- Every trust policy the grant came through still exists.
                 and (g.policies is null or (select count(*) from trust_policies tp
                           where tp.id = any(string_to_array(g.policies, ' ')::uuid[]) and tp.agent_id = g.agent)
                         = cardinality(string_to_array(g.policies, ' ')))${binding(`
                 -- The federation binding it came through still exists, for the agent, its partner active.
                 and (g.binding is null or exists (select 1 from federation_bindings b join federation_partners fp on fp.id = b.partner_id
                           where b.id = g.binding and b.agent_id = g.agent and fp.status = 'active' and ag.org_id = any(fp.org_ids)${revision(`
                             -- ... at the revision the token was verified against; locked, so that a change of the
                             -- partner either waits for this grant (and then revokes its token) or refuses it here.
                             and fp.revision = g.partner_revision for share of fp`)}))`)} as ok
            from unnest(p_agent, p_credential, p_scopes, p_trust_policies${binding(', p_binding')}${revision(', p_partner_revision')}) with ordinality as g(agent, credential, scopes, policies, ${binding('binding, ')}${revision('partner_revision, ')}i)
            left join agents ag on ag.id = g.agent
            left join organizations o on o.id = ag.org_id) as x;

${usedJtis(`
      -- Single use: every grant carrying a token's jti spends it, through the gate or not (a
      -- token refused for one agent cannot be retried for another). Of a batch's grants with one
      -- jti the first in agent order spends it (as if each ran alone); a jti spent before (by
      -- this batch, or by any committed statement: a concurrent insert waits for the other's
      -- commit) refuses the grant as a replay, before it counts anywhere. Inserted in jti order,
      -- so batches cannot deadlock.
      if p_used_jti is not null then
        with offered as (
          select distinct on (j.jti) j.jti, j.exp, j.i::int as i
            from unnest(p_used_jti, p_used_jti_exp) with ordinality as j(jti, exp, i)
            where j.jti is not null
            order by j.jti, p_agent[j.i::int], j.i),
        spent as (
          insert into github_used_jtis (jti, expires_at) select jti, to_timestamp(exp) from offered order by jti
            on conflict (jti) do nothing
            returning jti)
        select array_agg(coalesce(p_used_jti[s.i] is null or (o.i = s.i and sp.jti is not null), false) order by s.i) into fresh
          from generate_series(1, n) as s(i)
          left join offered o on o.jti = p_used_jti[s.i]
          left join spent sp on sp.jti = o.jti;
        select array_agg(passed[s.i] and fresh[s.i] order by s.i) into passed from generate_series(1, n) as s(i);
      end if;
`)}
      rated := passed;
      if p_rate_limit > 0 then
        -- Every request that passed the gate counts in its window, even one refused for it.
        with counted as (
          select g.i::int as i, g.agent, g.window_start,
                 row_number() over (partition by g.agent, g.window_start order by g.i) as rank,
                 count(*) over (partition by g.agent, g.window_start) as added
            from unnest(p_agent, p_window_start) with ordinality as g(agent, window_start, i)
            where passed[g.i::int]),
        windows as (
          insert into rate_limit_windows as w (client_id, window_start, count)
            select agent::text, window_start, count(*) from counted group by agent, window_start order by agent, window_start
            on conflict (client_id, window_start) do update set count = w.count + excluded.count
            returning w.client_id, w.window_start, w.count),
        counts as (
          select s.i, (w.count - c.added + c.rank)::int as count
            from generate_series(1, n) as s(i)
            left join counted c on c.i = s.i
            left join windows w on w.client_id = c.agent::text and w.window_start = c.window_start)
        select array_agg(count order by i), array_agg(coalesce(count <= p_rate_limit, false) order by i)
          into rates, rated
          from counts;
      end if;

      -- The agent's month, only when it has a limit: lock each (agent, month) row and read its
      -- count (the no-op update of an existing row returns it as it is, after any concurrent
      -- batch has committed), then rank the batch's grants on it.
      fits := rated;
      if p_monthly_limit > 0 then
        with locked as (
          insert into token_quotas as q (agent_id, month, count)
            select distinct p_agent[s.i], p_month[s.i], 0 from generate_series(1, n) as s(i) where rated[s.i]
            order by 1, 2
            on conflict (agent_id, month) do update set count = q.count
            returning q.agent_id, q.month, q.count)
        select array_agg(agent_id), array_agg(month), array_agg(count) into q_agent, q_month, q_before from locked;
        with ranked as (
          select s.i, b.prior + row_number() over (partition by b.agent, b.month order by s.i) as count
            from generate_series(1, n) as s(i)
            join unnest(q_agent, q_month, q_before) as b(agent, month, prior)
              on b.agent = p_agent[s.i] and b.month = p_month[s.i]
            where rated[s.i])
        select array_agg(r.count <= p_monthly_limit is true order by s.i) into fits
          from generate_series(1, n) as s(i) left join ranked r on r.i = s.i;
      end if;

      -- The same for each (organization, month) with a limit, in agent order, among the grants
      -- that fit their agent's month. Up to the grant that fills the organization's month every
      -- grant that fits is admitted, so the agent ranks above are exact there; after it every
      -- grant of that organization is refused, and only which step refused it is settled below.
      admitted := fits;
      if exists (select 1 from generate_series(1, n) as s(i) where fits[s.i] and limits[s.i] is not null) then
        with locked as (
          insert into org_token_quotas as q (org_id, month, count)
            select distinct orgs[s.i], p_month[s.i], 0 from generate_series(1, n) as s(i) where fits[s.i] and limits[s.i] is not null
            order by 1, 2
            on conflict (org_id, month) do update set count = q.count
            returning q.org_id, q.month, q.count)
        select array_agg(org_id), array_agg(month), array_agg(count) into o_org, o_month, o_before from locked;
        with ranked as (
          select s.i, b.prior + row_number() over (partition by b.org, b.month order by p_agent[s.i], s.i) as count
            from generate_series(1, n) as s(i)
            join unnest(o_org, o_month, o_before) as b(org, month, prior)
              on b.org = orgs[s.i] and b.month = p_month[s.i]
            where fits[s.i])
        select array_agg(case when limits[s.i] is null then fits[s.i] else r.count <= limits[s.i] is true end order by s.i) into admitted
          from generate_series(1, n) as s(i) left join ranked r on r.i = s.i;
      end if;

      -- Both months count every grant admitted, limit or not (usage): one upsert each, whose
      -- returned count less the batch's grants is the count before them (the rows a limit
      -- locked above are this statement's already). A grant's count is that plus its rank.
      with added as (
        select p_agent[s.i] as agent, p_month[s.i] as month, count(*) as added
          from generate_series(1, n) as s(i) where admitted[s.i] group by 1, 2),
      raised as (
        insert into token_quotas as q (agent_id, month, count)
          select agent, month, added from added order by 1, 2
          on conflict (agent_id, month) do update set count = q.count + excluded.count
          returning q.agent_id, q.month, q.count),
      counted as (
        select s.i, r.count - a.added + row_number() over (partition by p_agent[s.i], p_month[s.i] order by s.i) as count
          from generate_series(1, n) as s(i)
          join added a on a.agent = p_agent[s.i] and a.month = p_month[s.i]
          join raised r on r.agent_id = p_agent[s.i] and r.month = p_month[s.i]
          where admitted[s.i])
      select array_agg(c.count::int order by s.i) into quotas from generate_series(1, n) as s(i) left join counted c on c.i = s.i;
      with added as (
        select orgs[s.i] as org, p_month[s.i] as month, count(*) as added
          from generate_series(1, n) as s(i) where admitted[s.i] group by 1, 2),
      raised as (
        insert into org_token_quotas as q (org_id, month, count)
          select org, month, added from added order by 1, 2
          on conflict (org_id, month) do update set count = q.count + excluded.count
          returning q.org_id, q.month, q.count),
      counted as (
        select s.i, r.count - a.added + row_number() over (partition by orgs[s.i], p_month[s.i] order by p_agent[s.i], s.i) as count
          from generate_series(1, n) as s(i)
          join added a on a.org = orgs[s.i] and a.month = p_month[s.i]
          join raised r on r.org_id = orgs[s.i] and r.month = p_month[s.i]
          where admitted[s.i])
      select array_agg(c.count::int order by s.i) into org_quotas from generate_series(1, n) as s(i) left join counted c on c.i = s.i;

      insert into access_tokens (jti, agent_id, credential_id, trust_policy_ids, ${binding('binding_id, ')}grant_type, scope, issued_at, expires_at)
        select p_jti[s.i], p_agent[s.i], p_credential[s.i], string_to_array(p_trust_policies[s.i], ' ')::uuid[], ${binding('p_binding[s.i], ')}p_grant_type[s.i], p_scopes[s.i],
               to_timestamp(p_issued_at[s.i]), to_timestamp(p_expires_at[s.i])
          from generate_series(1, n) as s(i) where admitted[s.i] order by p_agent[s.i], s.i;
      insert into audit_events (type, agent_id, org_id, actor, data)
        select p_audit_type[s.i], p_agent[s.i], orgs[s.i], p_audit_actor[s.i], p_audit_data[s.i]
          from generate_series(1, n) as s(i) where admitted[s.i] order by p_agent[s.i], s.i;

      -- A grant refused by a month, decided alone, would see only the grants of its agent
      -- admitted before it: its agent's month refuses it if those fill it, else its organization's.
      if exists (select 1 from generate_series(1, n) as s(i) where rated[s.i] and not admitted[s.i]) then
        with settled as (
          select s.i, coalesce((select q.count from token_quotas q where q.agent_id = p_agent[s.i] and q.month = p_month[s.i]), 0)
                      - (select count(*) from generate_series(1, n) as e(j)
                           where admitted[e.j] and p_agent[e.j] = p_agent[s.i] and p_month[e.j] = p_month[s.i] and e.j > s.i) as before
            from generate_series(1, n) as s(i)
            where rated[s.i] and not admitted[s.i])
        select array_agg(st.before order by s.i) into q_settled
          from generate_series(1, n) as s(i) left join settled st on st.i = s.i;
      end if;

      return query
        -- rates and quotas hold nothing for a grant their step did not count.
        select s.i, passed[s.i]::int, rates[s.i],
               case when admitted[s.i] then quotas[s.i]
                    when q_settled[s.i] is not null and not (p_monthly_limit > 0 and q_settled[s.i] >= p_monthly_limit) then (q_settled[s.i] + 1)::int end,
               org_quotas[s.i], limits[s.i],
               case ${usedJtis(`when fresh[s.i] is false then 'replay' `)}when not passed[s.i] then 'gate' when not rated[s.i] then 'rate'
                    when admitted[s.i] then null
                    when p_monthly_limit > 0 and q_settled[s.i] >= p_monthly_limit then 'quota' else 'org_quota' end,
               coalesce(admitted[s.i], false)::int
          from generate_series(1, n) as s(i);
    end
    $fn$
    set plan_cache_mode = force_generic_plan`;
}

/**
 * Back to one flat trust domain: refused while any organization but the platform exists
 * (their agents would land in the platform's). Events linked since carry `orgId` in their
 * hashes, which the code before does not know: /audit/verify reports the first of them.
 */
export async function down(knex: Knex): Promise<void> {
  const [{ count }] = await knex('organizations').where({ is_platform: false }).count<{ count: string }[]>({ count: '*' });
  if (Number(count) > 0) throw new Error('organizations other than the platform exist: reverting would merge them into one trust domain');
  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await createPreviousIssueGrants(knex);
  await knex.schema.dropTable('usage_refusals');
  await knex.schema.dropTable('org_token_quotas');
  await knex.raw(`alter table audit_events drop column org_id`);
  await knex.raw(`drop index agents_registered_name`);
  await knex.raw(
    `create unique index agents_registered_name on agents (registered_repository_id, name) where registered_repository_id is not null`,
  );
  await knex.raw(`alter table trust_policies drop column org_id`);
  await knex.raw(`alter table agents drop column org_id`);
  await knex.schema.dropTable('organizations');
}
