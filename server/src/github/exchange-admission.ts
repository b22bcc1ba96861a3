/**
 * The exchange's reads and its one write before the grant, in one round trip shared by
 * concurrent exchanges: spend each ID token's jti (atomic across instances: of concurrent
 * uses exactly one inserts it) and, only for the requests that spent theirs, read the
 * agent and its policies for the repository.
 */
import type { Config } from '../config.js';
import type { AgentStatus } from '../agents/agent.js';
import { Batcher, RETRY_ALONE_UNLESS_UNAVAILABLE } from '../storage/batcher.js';
import type { RunPrepared } from '../storage/prepared.js';
import { usedJtiKey } from './id-token-gate.js';
import { ASCII_FOLD, foldRepository, toPolicy, type PolicyRow, type StoredTrustPolicy } from './trust-policy-store.js';
import type { GitHubClaims } from './verify-id-token.js';

export type ExchangeAdmission =
  | { readonly isReplay: true }
  | {
      readonly isReplay: false;
      readonly agent:
        | { readonly status: AgentStatus; readonly scopes: readonly string[]; readonly orgId: string; readonly orgStatus: string }
        | undefined;
      readonly policies: StoredTrustPolicy[];
    };

// The inputs' jtis are distinct (see admitBatch), so a jti in `spent` was spent by its one row.
const ADMIT = `
  with input as (
    select * from unnest($1::text[], $2::float8[], $3::uuid[], $4::text[]) with ordinality as i(jti, exp, agent_id, repository, ord)
  ), spent as (
    insert into github_used_jtis (jti, expires_at) select jti, to_timestamp(exp) from input
    on conflict (jti) do nothing returning jti
  )
  select i.ord::int as ord,
         s.jti is not null as spent,
         a.status as agent_status,
         a.scopes as agent_scopes,
         a.org_id,
         o.status as org_status,
         coalesce(
           (select json_agg(p) from trust_policies p where ${ASCII_FOLD.replace('repository', 'p.repository')} = i.repository and p.agent_id = a.id),
           '[]'::json
         ) as policies
    from input i
    left join spent s on s.jti = i.jti
    left join agents a on a.id = i.agent_id and s.jti is not null
    left join organizations o on o.id = a.org_id`;

interface AdmitRow {
  readonly ord: number;
  readonly spent: boolean;
  readonly agent_status: AgentStatus | null;
  readonly agent_scopes: string[] | null;
  readonly org_id: string | null;
  readonly org_status: string | null;
  readonly policies: PolicyRow[];
}

interface AdmitInput {
  readonly jti: string;
  readonly exp: number;
  readonly agentId: string;
  readonly repository: string;
}

const REPLAY: ExchangeAdmission = { isReplay: true };

/** Returns admitExchange, whose concurrent calls share one statement. */
export function createExchangeAdmission(query: RunPrepared, config: Config) {
  /** Within a batch, an ID token used twice is spent by its first use; the others are replays. */
  async function admitBatch(inputs: AdmitInput[]): Promise<ExchangeAdmission[]> {
    const firstUse = new Map<string, number>();
    inputs.forEach((input, index) => firstUse.has(input.jti) || firstUse.set(input.jti, index));
    const distinctIndexes = [...firstUse.values()];
    const distinct = distinctIndexes.map((index) => inputs[index] as AdmitInput);
    const rows = await query<AdmitRow>('oidc_admit', ADMIT, [
      distinct.map((input) => input.jti),
      distinct.map((input) => input.exp),
      distinct.map((input) => input.agentId),
      distinct.map((input) => input.repository),
    ]);
    const admissionOf = new Map<number, ExchangeAdmission>();
    for (const row of rows) {
      admissionOf.set(
        distinctIndexes[row.ord - 1] as number,
        !row.spent
          ? REPLAY
          : {
              isReplay: false,
              agent:
                row.agent_status === null
                  ? undefined
                  : { status: row.agent_status, scopes: row.agent_scopes ?? [], orgId: row.org_id as string, orgStatus: row.org_status as string },
              policies: row.policies.map(toPolicy),
            },
      );
    }
    return inputs.map((_input, index) => admissionOf.get(index) ?? REPLAY);
  }
  const batches = new Batcher<AdmitInput, ExchangeAdmission>(admitBatch, RETRY_ALONE_UNLESS_UNAVAILABLE);

  return function admitExchange(claims: GitHubClaims, agentId: string): Promise<ExchangeAdmission> {
    return batches.submit({ jti: usedJtiKey(config, claims), exp: claims.exp, agentId, repository: foldRepository(claims.repository) });
  };
}
