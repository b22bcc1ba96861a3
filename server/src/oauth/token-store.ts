/**
 * The access_tokens table: the state of issued tokens (recorded by issue_grants, see
 * grant-batches.ts), revocation, and pruning. Every statement whose outcome depends on
 * expiry takes the instant from the caller's clock.
 */
import type { Knex } from 'knex';
import type { RunPrepared } from '../storage/prepared.js';

/** A token by its jti and the kid of the key that signed it. */
export interface TokenOfKey {
  readonly jti: string;
  readonly kid: string;
}

export interface TokenState extends TokenOfKey {
  readonly agent_id: string;
  readonly is_revoked: boolean;
  readonly status: string;
  /** The agent's organization, its status, and whether it is the platform organization. */
  readonly org_id: string;
  readonly org_status: string;
  readonly is_platform: boolean;
  /** The key that signed it has been revoked (`sentryagent-idp keys revoke`). */
  readonly is_key_revoked: boolean;
}

// Inactive also while the agent's organization is not active (its own row says so: a
// suspension holds at the next request on every instance).
// Revoked, or as good as: the agent no longer holds one of its scopes, its credential was
// revoked, or one of its trust policies deleted. Those changes also mark the tokens revoked
// (agent-service.ts, trust-policy-service.ts); reading them here as well means that a grant
// which raced the change, and was recorded after the marking, is inactive all the same.
const TOKEN_STATE_SQL = `select w.jti, w.kid, t.agent_id, a.status, a.org_id, o.status as org_status, o.is_platform,
    t.revoked_at is not null
      or not a.scopes @> string_to_array(t.scope, ' ')
      or (t.credential_id is not null and not exists (select 1 from credentials c where c.id = t.credential_id and c.revoked_at is null))
      or (t.trust_policy_ids is not null
          and (select count(*) from trust_policies p where p.id = any(t.trust_policy_ids)) <> cardinality(t.trust_policy_ids))
      or (t.binding_id is not null and not exists (select 1 from federation_bindings b join federation_partners fp on fp.id = b.partner_id
            where b.id = t.binding_id and fp.status = 'active' and a.org_id = any(fp.org_ids))) as is_revoked,
    exists (select 1 from signing_keys k where k.kid = w.kid and k.revoked_at is not null) as is_key_revoked
  from unnest($1::uuid[], $2::text[]) as w(jti, kid)
  join access_tokens t on t.jti = w.jti join agents a on a.id = t.agent_id join organizations o on o.id = a.org_id`;

/** The recorded state of each distinct token; unknown ones are not in the result. */
export function lookUpTokenStates(query: RunPrepared, tokens: readonly TokenOfKey[]): Promise<TokenState[]> {
  return query<TokenState>('token_state', TOKEN_STATE_SQL, [tokens.map((token) => token.jti), tokens.map((token) => token.kid)]);
}

const HOLDER_SQL = `select a.id as agent_id, a.org_id, a.scopes from access_tokens t join agents a on a.id = t.agent_id where t.jti = $1::uuid`;

/** The agent a recorded token was issued to, with its organization and the scopes it holds now. */
export async function findTokenHolder(query: RunPrepared, jti: string): Promise<{ agentId: string; orgId: string; scopes: string[] } | undefined> {
  const [row] = await query<{ agent_id: string; org_id: string; scopes: string[] }>('token_holder', HOLDER_SQL, [jti]);
  return row ? { agentId: row.agent_id, orgId: row.org_id, scopes: row.scopes } : undefined;
}

const REVOKE_SQL = `with r as (
    update access_tokens set revoked_at = to_timestamp($3::float8 / 1000) where jti = $1::uuid and revoked_at is null returning jti, agent_id
  )
  insert into audit_events (type, agent_id, org_id, actor, data)
  select 'token.revoked', r.agent_id, a.org_id, $2::text, jsonb_build_object('jti', r.jti) from r join agents a on a.id = r.agent_id returning id`;

/** RFC 7009: marks the token revoked and writes its audit row, in one statement; true when this call revoked it. */
export async function revokeTokenAudited(query: RunPrepared, jti: string, actor: string, nowMs: number): Promise<boolean> {
  const rows = await query('revoke_token', REVOKE_SQL, [jti, actor, nowMs]);
  return rows.length > 0;
}

/**
 * Marks the live tokens of an agent, of one of its credentials, issued through one trust
 * policy, or of every agent of an organization, revoked: they stay dead after a reactivation.
 */
export async function revokeLiveTokens(
  trx: Knex.Transaction,
  of: { readonly agentId: string } | { readonly credentialId: string } | { readonly trustPolicyId: string } | { readonly orgId: string },
  nowMs: number,
): Promise<number> {
  const now = new Date(nowMs);
  return trx('access_tokens')
    .modify((query) => {
      if ('agentId' in of) query.where({ agent_id: of.agentId });
      else if ('orgId' in of) query.whereIn('agent_id', trx('agents').where({ org_id: of.orgId }).select('id'));
      else if ('credentialId' in of) query.where({ credential_id: of.credentialId });
      else query.whereNotNull('trust_policy_ids').whereRaw('trust_policy_ids @> array[?::uuid]', [of.trustPolicyId]);
    })
    .whereNull('revoked_at')
    .where('expires_at', '>', now)
    .update({ revoked_at: now });
}

/** Tokens an hour past their expiry can no longer be presented or introspected as anything but inactive. */
export async function pruneExpiredTokens(trx: Knex.Transaction, nowMs: number): Promise<void> {
  await trx('access_tokens').where('expires_at', '<', new Date(nowMs - 3_600_000)).delete();
}
