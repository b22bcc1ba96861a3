/**
 * The bookkeeping of one grant in one prepared statement (one round trip, no explicit
 * transaction):
 *   gate   the credential is still live (client credentials), the agent is active and
 *          still holds every scope granted: whatever the caller decided from cached
 *          data, the database has the last word, atomically;
 *   rl     count the request in the client's rate-limit window;
 *   q      count the grant in the agent's monthly quota;
 *   t      record the token (for revocation and introspection);
 *   a      append the audit event.
 * Each step runs only if the one before it allowed it. The counters are exact under
 * concurrency because ON CONFLICT DO UPDATE re-checks its WHERE against the latest row
 * version under the row lock.
 */

export interface GrantStatementShape {
  readonly hasCredential: boolean;
  readonly isRateLimited: boolean;
  readonly hasQuota: boolean;
}

export interface GrantValues {
  readonly agentId: string;
  readonly credentialId: string | null;
  readonly scopes: readonly string[];
  readonly windowStart: number;
  readonly rateLimitPerMinute: number;
  readonly month: string;
  readonly monthlyTokenLimit: number;
  readonly jti: string;
  readonly grantType: string;
  readonly issuedAtSeconds: number;
  readonly expiresAtSeconds: number;
  readonly auditType: string;
  readonly auditActor: string;
  readonly auditData: string;
}

export interface GrantOutcome {
  readonly gate: number;
  readonly rate_count: number | null;
  readonly quota_count: number | null;
  readonly issued: number;
}

export interface GrantStatement {
  readonly name: string;
  readonly text: string;
  values(v: GrantValues): unknown[];
}

/** Numbers each named parameter on first use, so a variant declares exactly the ones it uses. */
function parameters() {
  const order: (keyof GrantValues)[] = [];
  const ref = (name: keyof GrantValues, type: string) => {
    let index = order.indexOf(name);
    if (index < 0) index = order.push(name) - 1;
    return `$${index + 1}::${type}`;
  };
  return { ref, values: (v: GrantValues) => order.map((name) => v[name]) };
}

export function buildGrantStatement({ hasCredential, isRateLimited, hasQuota }: GrantStatementShape): GrantStatement {
  const { ref, values } = parameters();
  const agent = ref('agentId', 'uuid');
  const scopes = ref('scopes', 'text[]');
  const gate = hasCredential
    ? `gate as (select 1 from credentials c join agents ag on ag.id = c.agent_id
        where c.id = ${ref('credentialId', 'uuid')} and c.agent_id = ${agent} and c.revoked_at is null
          and ag.status = 'active' and ag.scopes @> ${scopes})`
    : `gate as (select 1 from agents ag where ag.id = ${agent} and ag.status = 'active' and ag.scopes @> ${scopes})`;
  const rate = () => `rl as (
      insert into rate_limit_windows as w (client_id, window_start, count) select ${agent}::text, ${ref('windowStart', 'bigint')}, 1 from gate
      on conflict (client_id, window_start) do update set count = w.count + 1
      returning w.count)`;
  const allowedByRate = isRateLimited ? 'from rl where rl.count <= ' + ref('rateLimitPerMinute', 'int') : 'from gate';
  const quota = () => `q as (
      insert into token_quotas as q (agent_id, month, count) select ${agent}, ${ref('month', 'text')}, 1 ${allowedByRate}
      on conflict (agent_id, month) do update set count = q.count + 1 where q.count < ${ref('monthlyTokenLimit', 'int')}
      returning q.count)`;
  const token = () => `t as (
      insert into access_tokens (jti, agent_id, credential_id, grant_type, scope, issued_at, expires_at)
      select ${ref('jti', 'uuid')}, ${agent}, ${hasCredential ? ref('credentialId', 'uuid') : 'null'}, ${ref('grantType', 'text')},
             array_to_string(${scopes}, ' '), to_timestamp(${ref('issuedAtSeconds', 'bigint')}), to_timestamp(${ref('expiresAtSeconds', 'bigint')})
      ${hasQuota ? 'from q' : allowedByRate}
      returning jti)`;
  const audit = () => `a as (
      insert into audit_events (type, agent_id, actor, data)
      select ${ref('auditType', 'text')}, ${agent}, ${ref('auditActor', 'text')}, ${ref('auditData', 'jsonb')} from t)`;
  // Built only when used: building one declares its parameters.
  const ctes = [gate, isRateLimited && rate(), hasQuota && quota()];
  ctes.push(token(), audit());
  const text = `with ${ctes.filter(Boolean).join(',\n')}
    select (select count(*) from gate)::int as gate,
           ${isRateLimited ? '(select count from rl)' : 'null::int'} as rate_count,
           ${hasQuota ? '(select count from q)' : 'null::int'} as quota_count,
           (select count(*) from t)::int as issued`;
  return { name: `grant_${hasCredential ? 'c' : 'o'}${isRateLimited ? 'r' : ''}${hasQuota ? 'q' : ''}`, text, values };
}
