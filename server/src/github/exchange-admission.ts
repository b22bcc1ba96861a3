/**
 * The exchange's reads and its one write before the grant, in one round trip: spend the
 * ID token's jti (atomic across instances: of concurrent uses exactly one inserts it) and,
 * only when this request spent it, read the agent and its policies for the repository.
 */
import type { Config } from '../config.js';
import type { AgentStatus } from '../agents/agent.js';
import type { RunPrepared } from '../storage/prepared.js';
import { SPEND_JTI, usedJtiKey } from './id-token-gate.js';
import { ASCII_FOLD, foldRepository, toPolicy, type PolicyRow, type StoredTrustPolicy } from './trust-policy-store.js';
import type { GitHubClaims } from './verify-id-token.js';

export type ExchangeAdmission =
  | { readonly isReplay: true }
  | {
      readonly isReplay: false;
      readonly agent: { readonly status: AgentStatus; readonly scopes: readonly string[] } | undefined;
      readonly policies: StoredTrustPolicy[];
    };

const ADMIT = `
  with spent as (${SPEND_JTI})
  select exists (select 1 from spent) as spent,
         a.status as agent_status,
         a.scopes as agent_scopes,
         coalesce(
           (select json_agg(p) from trust_policies p where ${ASCII_FOLD.replace('repository', 'p.repository')} = $4 and p.agent_id = a.id),
           '[]'::json
         ) as policies
    from (select 1) one
    left join agents a on a.id = $3 and exists (select 1 from spent)`;

interface AdmitRow {
  readonly spent: boolean;
  readonly agent_status: AgentStatus | null;
  readonly agent_scopes: string[] | null;
  readonly policies: PolicyRow[];
}

export async function admitExchange(query: RunPrepared, config: Config, claims: GitHubClaims, agentId: string): Promise<ExchangeAdmission> {
  const [row] = await query<AdmitRow>('oidc_admit', ADMIT, [usedJtiKey(config, claims), claims.exp, agentId, foldRepository(claims.repository)]);
  if (!row.spent) return { isReplay: true };
  return {
    isReplay: false,
    agent: row.agent_status === null ? undefined : { status: row.agent_status, scopes: row.agent_scopes ?? [] },
    policies: row.policies.map(toPolicy),
  };
}
