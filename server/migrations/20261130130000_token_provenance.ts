/**
 * A token records what it was issued through: the credential (since the first migration)
 * and now the trust policies of a GitHub exchange (`trust_policy_ids`, every policy that
 * matched: each one let the workflow in, and the token's scopes may come from any).
 * Deleting a policy revokes the tokens it issued; a token whose credential, policy or
 * scopes its agent no longer has is inactive at the next request on every instance
 * (token-store.ts), so a grant racing the change cannot outlive it either.
 *
 * issue_grants takes the policies as one more argument (space-separated ids, null for a
 * client-credentials grant) and its gate also requires them to exist, for the agent;
 * otherwise it is the function of migration 20261124090000_set_based_grants.
 */
import type { Knex } from 'knex';
import * as setBasedGrants from './20261124090000_set_based_grants.js';

const PREVIOUS_SIGNATURE = `issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[])`;

const SIGNATURE = `issue_grants(
      p_agent uuid[], p_credential uuid[], p_scopes text[], p_window_start bigint[], p_rate_limit int,
      p_month text[], p_monthly_limit int, p_jti uuid[], p_grant_type text[], p_issued_at bigint[],
      p_expires_at bigint[], p_audit_type text[], p_audit_actor text[], p_audit_data jsonb[], p_trust_policies text[])
    returns table (ord int, gate int, rate_count int, quota_count int, issued int)`;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`alter table access_tokens add column trust_policy_ids uuid[]`);
  // Deleting a policy finds its live tokens through this index. Only exchange tokens are in
  // it: GIN would otherwise keep an entry for every null array, a cost on every grant.
  await knex.raw(
    `create index access_tokens_live_by_trust_policy on access_tokens using gin (trust_policy_ids)
      where revoked_at is null and trust_policy_ids is not null`,
  );
  await knex.raw(`drop function if exists ${PREVIOUS_SIGNATURE}`);
  await createIssueGrants(knex);
}

/** This migration's issue_grants (also what the organizations migration goes back to). */
export async function createIssueGrants(knex: Knex): Promise<void> {
  await knex.raw(`
    create or replace function ${SIGNATURE}
    language plpgsql as $fn$
    #variable_conflict use_column
    declare
      n int := coalesce(array_length(p_agent, 1), 0);
      passed boolean[];    -- passed[i]: grant i got through the gate
      rates int[];         -- rates[i]: the window's count with grant i counted
      admitted boolean[];  -- admitted[i]: grant i passed every step so far
      quotas int[];        -- quotas[i]: the month's count with grant i, when it fits
      q_agent uuid[]; q_month text[]; q_before int[];
    begin
      -- Scope tokens never contain a space (RFC 6749 §3.3).
      select array_agg(
               exists (select 1 from agents ag where ag.id = g.agent and ag.status = 'active'
                         and ag.scopes @> string_to_array(g.scopes, ' '))
               and (g.credential is null or exists (select 1 from credentials c where c.id = g.credential
                         and c.agent_id = g.agent and c.revoked_at is null))
               -- Every trust policy the grant came through still exists.
               and (g.policies is null or (select count(*) from trust_policies tp
                         where tp.id = any(string_to_array(g.policies, ' ')::uuid[]) and tp.agent_id = g.agent)
                       = cardinality(string_to_array(g.policies, ' ')))
               order by g.i)
        into passed
        from unnest(p_agent, p_credential, p_scopes, p_trust_policies) with ordinality as g(agent, credential, scopes, policies, i);

      admitted := passed;
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
        rated as (
          select s.i, (w.count - c.added + c.rank)::int as count
            from generate_series(1, n) as s(i)
            left join counted c on c.i = s.i
            left join windows w on w.client_id = c.agent::text and w.window_start = c.window_start)
        select array_agg(count order by i), array_agg(coalesce(count <= p_rate_limit, false) order by i)
          into rates, admitted
          from rated;
      end if;

      if p_monthly_limit > 0 then
        -- Lock each (agent, month) row and read its count: the no-op update of an existing
        -- row returns it as it is, after any concurrent batch has committed.
        with locked as (
          insert into token_quotas as q (agent_id, month, count)
            select distinct p_agent[s.i], p_month[s.i], 0 from generate_series(1, n) as s(i) where admitted[s.i]
            order by 1, 2
            on conflict (agent_id, month) do update set count = q.count
            returning q.agent_id, q.month, q.count)
        select array_agg(agent_id), array_agg(month), array_agg(count) into q_agent, q_month, q_before from locked;
        with ranked as (
          select s.i, b.agent, b.month, b.prior + row_number() over (partition by b.agent, b.month order by s.i) as count
            from generate_series(1, n) as s(i)
            join unnest(q_agent, q_month, q_before) as b(agent, month, prior)
              on b.agent = p_agent[s.i] and b.month = p_month[s.i]
            where admitted[s.i]),
        raised as (
          update token_quotas q set count = r.after
            from (select agent, month, max(count) as after from ranked where count <= p_monthly_limit group by agent, month) as r
            where q.agent_id = r.agent and q.month = r.month),
        fitted as (
          select s.i, case when r.count <= p_monthly_limit then r.count::int end as count
            from generate_series(1, n) as s(i) left join ranked r on r.i = s.i)
        select array_agg(count order by i), array_agg(count is not null order by i) into quotas, admitted from fitted;
      end if;

      insert into access_tokens (jti, agent_id, credential_id, trust_policy_ids, grant_type, scope, issued_at, expires_at)
        select p_jti[s.i], p_agent[s.i], p_credential[s.i], string_to_array(p_trust_policies[s.i], ' ')::uuid[], p_grant_type[s.i], p_scopes[s.i],
               to_timestamp(p_issued_at[s.i]), to_timestamp(p_expires_at[s.i])
          from generate_series(1, n) as s(i) where admitted[s.i] order by p_agent[s.i], s.i;
      insert into audit_events (type, agent_id, actor, data)
        select p_audit_type[s.i], p_agent[s.i], p_audit_actor[s.i], p_audit_data[s.i]
          from generate_series(1, n) as s(i) where admitted[s.i] order by p_agent[s.i], s.i;

      return query
        -- rates and quotas hold nothing for a grant their step did not count.
        select s.i, passed[s.i]::int, rates[s.i], quotas[s.i], coalesce(admitted[s.i], false)::int
          from generate_series(1, n) as s(i);
    end
    $fn$
    set plan_cache_mode = force_generic_plan`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`drop function if exists issue_grants(uuid[], uuid[], text[], bigint[], int, text[], int, uuid[], text[], bigint[], bigint[], text[], text[], jsonb[], text[])`);
  await knex.raw(`alter table access_tokens drop column trust_policy_ids`);
  await setBasedGrants.up(knex);
}
