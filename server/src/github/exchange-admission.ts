/**
 * The exchange's read before the grant, in one round trip shared by concurrent exchanges:
 * the agent and its policies for the repository. It writes nothing: the ID token's jti is
 * spent by the grant's own issue_grants (GrantRequest.usedJti), or, when the exchange is
 * refused, by the refusal (exchange-service.ts), so an exchange commits once.
 */
import type { AgentStatus } from '../agents/agent.js';
import { Batcher, RETRY_ALONE_UNLESS_UNAVAILABLE } from '../storage/batcher.js';
import type { RunPrepared } from '../storage/prepared.js';
import { ASCII_FOLD, foldRepository, toPolicy, type PolicyRow, type StoredTrustPolicy } from './trust-policy-store.js';
import type { GitHubClaims } from './verify-id-token.js';

export interface ExchangeAdmission {
  readonly agent:
    | { readonly status: AgentStatus; readonly scopes: readonly string[]; readonly orgId: string; readonly orgStatus: string }
    | undefined;
  readonly policies: StoredTrustPolicy[];
}

const ADMIT = `
  select i.ord::int as ord,
         a.status as agent_status,
         a.scopes as agent_scopes,
         a.org_id,
         o.status as org_status,
         coalesce(
           (select json_agg(p) from trust_policies p where ${ASCII_FOLD.replace('repository', 'p.repository')} = i.repository and p.agent_id = a.id),
           '[]'::json
         ) as policies
    from unnest($1::uuid[], $2::text[]) with ordinality as i(agent_id, repository, ord)
    left join agents a on a.id = i.agent_id
    left join organizations o on o.id = a.org_id`;

interface AdmitRow {
  readonly ord: number;
  readonly agent_status: AgentStatus | null;
  readonly agent_scopes: string[] | null;
  readonly org_id: string | null;
  readonly org_status: string | null;
  readonly policies: PolicyRow[];
}

interface AdmitInput {
  readonly agentId: string;
  readonly repository: string;
}

/** Returns admitExchange, whose concurrent calls share one statement. */
export function createExchangeAdmission(query: RunPrepared) {
  async function admitBatch(inputs: AdmitInput[]): Promise<ExchangeAdmission[]> {
    const rows = await query<AdmitRow>('oidc_admit', ADMIT, [inputs.map((input) => input.agentId), inputs.map((input) => input.repository)]);
    const admissionOf = new Map<number, ExchangeAdmission>();
    for (const row of rows) {
      admissionOf.set(row.ord - 1, {
        agent:
          row.agent_status === null
            ? undefined
            : { status: row.agent_status, scopes: row.agent_scopes ?? [], orgId: row.org_id as string, orgStatus: row.org_status as string },
        policies: row.policies.map(toPolicy),
      });
    }
    return inputs.map((_input, index) => {
      const admission = admissionOf.get(index);
      if (!admission) throw new Error('oidc_admit returned no row for an exchange');
      return admission;
    });
  }
  const batches = new Batcher<AdmitInput, ExchangeAdmission>(admitBatch, RETRY_ALONE_UNLESS_UNAVAILABLE);

  return function admitExchange(claims: GitHubClaims, agentId: string): Promise<ExchangeAdmission> {
    return batches.submit({ agentId, repository: foldRepository(claims.repository) });
  };
}
