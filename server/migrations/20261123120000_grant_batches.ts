/**
 * issue_grants: the bookkeeping of a batch of grants in one call, so that concurrent
 * token requests share a round trip and a commit. Each grant is decided exactly as if
 * it ran alone, in the order given:
 *   gate   the credential (when there is one) is live, the agent is active and still
 *          holds every scope granted: the database has the last word over cached data;
 *   rate   count the request in the client's one-minute window (when rate_limit > 0);
 *   quota  count the grant in the agent's monthly quota (when monthly_limit > 0);
 *   token  record the token (for revocation and introspection);
 *   audit  append the audit event.
 * Each step runs only if the one before allowed it. The grants are taken in agent order,
 * so two batches lock the counters of their agents in the same order and cannot deadlock.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function issue_grants(
      p_agent uuid[], p_credential uuid[], p_scopes text[], p_window_start bigint[], p_rate_limit int,
      p_month text[], p_monthly_limit int, p_jti uuid[], p_grant_type text[], p_issued_at bigint[],
      p_expires_at bigint[], p_audit_type text[], p_audit_actor text[], p_audit_data jsonb[])
    returns table (ord int, gate int, rate_count int, quota_count int, issued int)
    language plpgsql as $fn$
    #variable_conflict use_column
    declare
      i int;
      granted text[];
    begin
      for i in select s.i from generate_subscripts(p_agent, 1) as s(i) order by p_agent[s.i], s.i loop
        ord := i; gate := 0; rate_count := null; quota_count := null; issued := 0;
        -- Scope tokens never contain a space (RFC 6749 §3.3).
        granted := string_to_array(p_scopes[i], ' ');
        if p_credential[i] is not null then
          perform 1 from credentials c join agents ag on ag.id = c.agent_id
            where c.id = p_credential[i] and c.agent_id = p_agent[i] and c.revoked_at is null
              and ag.status = 'active' and ag.scopes @> granted;
        else
          perform 1 from agents ag where ag.id = p_agent[i] and ag.status = 'active' and ag.scopes @> granted;
        end if;
        if not found then return next; continue; end if;
        gate := 1;
        if p_rate_limit > 0 then
          insert into rate_limit_windows as w (client_id, window_start, count) values (p_agent[i]::text, p_window_start[i], 1)
            on conflict (client_id, window_start) do update set count = w.count + 1
            returning w.count into rate_count;
          if rate_count > p_rate_limit then return next; continue; end if;
        end if;
        if p_monthly_limit > 0 then
          insert into token_quotas as q (agent_id, month, count) values (p_agent[i], p_month[i], 1)
            on conflict (agent_id, month) do update set count = q.count + 1 where q.count < p_monthly_limit
            returning q.count into quota_count;
          if not found then return next; continue; end if;
        end if;
        insert into access_tokens (jti, agent_id, credential_id, grant_type, scope, issued_at, expires_at)
          values (p_jti[i], p_agent[i], p_credential[i], p_grant_type[i], p_scopes[i],
                  to_timestamp(p_issued_at[i]), to_timestamp(p_expires_at[i]));
        insert into audit_events (type, agent_id, actor, data)
          values (p_audit_type[i], p_agent[i], p_audit_actor[i], p_audit_data[i]);
        issued := 1;
        return next;
      end loop;
    end
    $fn$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop function if exists issue_grants');
}
