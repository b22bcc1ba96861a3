/**
 * The bookkeeping of a batch of grants in one call of issue_grants (migration
 * 20261202090000_organizations, which says how each grant is decided; 20261203090000_federation adds the binding and
 * 20261204090000_federation_partner_revision its partner's revision, 20261207090000_grant_spends_jti
 * the single-use jti): one round trip,
 * one commit and a fixed number of statements for all of them, each grant decided as if
 * it ran alone.
 */
import type { Config } from '../config.js';
import type { RunPrepared } from '../storage/prepared.js';

/** One grant, as issue_grants takes it. */
export interface GrantRow {
  readonly agentId: string;
  readonly credentialId: string | null;
  /** The trust policies of a GitHub exchange, space-separated; null for other grants. */
  readonly trustPolicies: string | null;
  /** The federation binding of a token-exchange or JWT-bearer grant; null for other grants. */
  readonly bindingId: string | null;
  /** The revision of the binding's partner the grant's token was verified against; null for other grants. */
  readonly partnerRevision: number | null;
  /** The single-use token the grant spends (issuer#jti of a GitHub ID token or a partner's token); null for none. */
  readonly usedJti: string | null;
  /** Its `exp`: it is remembered until then. */
  readonly usedJtiExp: number | null;
  readonly scope: string;
  readonly windowStart: number;
  readonly month: string;
  readonly jti: string;
  readonly grantType: string;
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly auditType: string;
  readonly auditActor: string;
  readonly auditData: string;
}

/** What the database decided for one grant: gate passed, counters after it, token recorded. */
export interface GrantOutcome {
  readonly ord: number;
  readonly gate: number;
  readonly rate_count: number | null;
  readonly quota_count: number | null;
  /** The organization's month with this grant counted, when it fits. */
  readonly org_quota_count: number | null;
  /** The organization's monthly limit (null: none). */
  readonly org_limit: number | null;
  /** The step that refused the grant: its token spent before, the gate, the rate window, the agent's or the organization's month. */
  readonly refusal: 'replay' | 'gate' | 'rate' | 'quota' | 'org_quota' | null;
  readonly issued: number;
  /** The key about to sign these grants has been revoked: reload the keys first. */
  readonly is_key_revoked: boolean;
}

const ISSUE_GRANTS_SQL = `select ord, gate, rate_count, quota_count, org_quota_count, org_limit, refusal, issued,
    exists (select 1 from signing_keys k where k.kid = $16::text and k.revoked_at is not null) as is_key_revoked
  from issue_grants(
  $1::uuid[], $2::uuid[], $3::text[], $4::bigint[], $5::int, $6::text[], $7::int,
  $8::uuid[], $9::text[], $10::bigint[], $11::bigint[], $12::text[], $13::text[], $14::jsonb[], $15::text[], $17::uuid[], $18::int[], $19::text[], $20::float8[])`;

/**
 * The outcomes in the order of `rows`. One statement: if it fails, nothing of it is
 * committed. `signingKid`: the key that will sign them, checked for revocation on the way.
 */
export async function issueGrantBatch(query: RunPrepared, config: Config, rows: readonly GrantRow[], signingKid: string | null = null): Promise<GrantOutcome[]> {
  const column = <K extends keyof GrantRow>(key: K) => rows.map((row) => row[key]);
  const outcomes = await query<GrantOutcome>('issue_grants', ISSUE_GRANTS_SQL, [
    column('agentId'),
    column('credentialId'),
    column('scope'),
    column('windowStart'),
    config.rateLimitPerMinute,
    column('month'),
    config.monthlyTokenLimit,
    column('jti'),
    column('grantType'),
    column('issuedAt'),
    column('expiresAt'),
    column('auditType'),
    column('auditActor'),
    column('auditData'),
    column('trustPolicies'),
    signingKid,
    column('bindingId'),
    column('partnerRevision'),
    // Null when no grant spends a token: the function skips the step.
    ...(rows.some((row) => row.usedJti !== null) ? [column('usedJti'), column('usedJtiExp')] : [null, null]),
  ]);
  const byOrdinal = new Map(outcomes.map((outcome) => [outcome.ord, outcome]));
  return rows.map((_row, index) => {
    const outcome = byOrdinal.get(index + 1);
    if (!outcome) throw new Error('issue_grants returned no outcome for a grant');
    return outcome;
  });
}
