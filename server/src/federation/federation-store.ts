/** Database access for federation partners and bindings; returns domain objects, never rows. */
import type { Knex } from 'knex';
import type { RunPrepared } from '../storage/prepared.js';
import type { Condition } from './conditions.js';
import type { PresetName } from './presets.js';

type Db = Knex | Knex.Transaction;

/** A public JWK as a partner's inline key set carries it. */
export type PublicJwk = Record<string, unknown>;

export interface Partner {
  readonly partnerId: string;
  readonly name: string;
  readonly preset: PresetName;
  readonly issuer: string;
  readonly status: 'active' | 'suspended';
  /** Counts its changes: a grant is issued only at the revision its token was verified against. */
  readonly revision: number;
  /** Where the keys come from: this URL, the inline `keys`, or (both null) the issuer's OIDC discovery. */
  readonly jwksUri: string | null;
  readonly keys: { readonly keys: readonly PublicJwk[] } | null;
  readonly audiences: readonly string[];
  readonly algorithms: readonly string[];
  readonly maxTokenAgeSeconds: number;
  readonly singleUseJti: boolean;
  /** Conditions every token of this partner must meet (the tenant pin on a shared issuer). */
  readonly requiredClaims: readonly Condition[];
  /** The organizations that may bind their agents to it. */
  readonly orgIds: readonly string[];
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface Binding {
  readonly bindingId: string;
  readonly orgId: string;
  readonly partnerId: string;
  readonly agentId: string;
  readonly conditions: readonly Condition[];
  /** A subset of the agent's scopes; null: all of them. */
  readonly scopes: readonly string[] | null;
  /** Tokens issued through it live at most this long (and never longer than TOKEN_TTL_SECONDS). */
  readonly maxTtlSeconds: number | null;
  readonly createdAt: string;
}

interface PartnerRow {
  id: string;
  name: string;
  preset: PresetName;
  issuer: string;
  status: 'active' | 'suspended';
  revision: number;
  jwks_uri: string | null;
  keys: { keys: PublicJwk[] } | null;
  audiences: string[];
  algorithms: string[];
  max_token_age_seconds: number;
  single_use_jti: boolean;
  required_claims: Condition[];
  org_ids: string[];
  created_at: Date;
  updated_at: Date;
}

interface BindingRow {
  id: string;
  org_id: string;
  partner_id: string;
  agent_id: string;
  conditions: Condition[];
  scopes: string[] | null;
  max_ttl_seconds: number | null;
  created_at: Date;
}

/** A row, or its JSON inside a json_agg (timestamps as text). */
const toPartner = (row: PartnerRow | (Omit<PartnerRow, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string })): Partner => ({
  partnerId: row.id,
  name: row.name,
  preset: row.preset,
  issuer: row.issuer,
  status: row.status,
  revision: row.revision,
  jwksUri: row.jwks_uri,
  keys: row.keys,
  audiences: row.audiences,
  algorithms: row.algorithms,
  maxTokenAgeSeconds: row.max_token_age_seconds,
  singleUseJti: row.single_use_jti,
  requiredClaims: row.required_claims,
  orgIds: row.org_ids,
  createdAt: new Date(row.created_at).toISOString(),
  updatedAt: new Date(row.updated_at).toISOString(),
});

const toBinding = (row: BindingRow | (Omit<BindingRow, 'created_at'> & { created_at: string })): Binding => ({
  bindingId: row.id,
  orgId: row.org_id,
  partnerId: row.partner_id,
  agentId: row.agent_id,
  conditions: row.conditions,
  scopes: row.scopes,
  maxTtlSeconds: row.max_ttl_seconds,
  createdAt: new Date(row.created_at).toISOString(), // a Date, or its JSON text inside a json_agg
});

export type PartnerFields = Omit<Partner, 'partnerId' | 'status' | 'revision' | 'createdAt' | 'updatedAt'>;

const partnerColumns = (fields: Partial<PartnerFields>) => ({
  ...(fields.name !== undefined && { name: fields.name }),
  ...(fields.preset !== undefined && { preset: fields.preset }),
  ...(fields.issuer !== undefined && { issuer: fields.issuer }),
  ...(fields.jwksUri !== undefined && { jwks_uri: fields.jwksUri }),
  ...(fields.keys !== undefined && { keys: fields.keys === null ? null : JSON.stringify(fields.keys) }),
  ...(fields.audiences !== undefined && { audiences: fields.audiences }),
  ...(fields.algorithms !== undefined && { algorithms: fields.algorithms }),
  ...(fields.maxTokenAgeSeconds !== undefined && { max_token_age_seconds: fields.maxTokenAgeSeconds }),
  ...(fields.singleUseJti !== undefined && { single_use_jti: fields.singleUseJti }),
  ...(fields.requiredClaims !== undefined && { required_claims: JSON.stringify(fields.requiredClaims) }),
  ...(fields.orgIds !== undefined && { org_ids: fields.orgIds }),
});

export async function insertPartner(trx: Knex.Transaction, id: string, fields: PartnerFields): Promise<Partner> {
  const [row] = await trx('federation_partners').insert({ id, ...partnerColumns(fields) }).returning('*');
  return toPartner(row);
}

export async function updatePartner(trx: Knex.Transaction, id: string, fields: Partial<PartnerFields> & { status?: Partner['status'] }): Promise<Partner> {
  const [row] = await trx('federation_partners')
    .where({ id })
    .update({
      ...partnerColumns(fields),
      ...(fields.status && { status: fields.status }),
      revision: trx.raw('revision + 1'),
      updated_at: trx.raw(`date_trunc('milliseconds', now())`),
    })
    .returning('*');
  return toPartner(row);
}

export async function findPartner(db: Db, id: string, forUpdate = false): Promise<Partner | undefined> {
  const query = db<PartnerRow>('federation_partners').where({ id }).first();
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toPartner(row) : undefined;
}

/** Partners, oldest first by id; `openTo`: only those an organization may bind to. */
export async function listPartners(db: Db, query: { afterId?: string; limit: number; openTo?: string }): Promise<{ partners: Partner[]; hasMore: boolean }> {
  const rows: PartnerRow[] = await db<PartnerRow>('federation_partners')
    .modify((builder) => {
      if (query.afterId) builder.where('id', '>', query.afterId);
      if (query.openTo) builder.whereRaw('org_ids @> array[?::uuid]', [query.openTo]);
    })
    .orderBy('id')
    .limit(query.limit + 1);
  return { partners: rows.slice(0, query.limit).map(toPartner), hasMore: rows.length > query.limit };
}

export async function deletePartner(trx: Knex.Transaction, id: string): Promise<void> {
  await trx('federation_partners').where({ id }).delete();
}

export interface NewBinding {
  readonly id: string;
  readonly orgId: string;
  readonly partnerId: string;
  readonly agentId: string;
  readonly conditions: readonly Condition[];
  readonly scopes: readonly string[] | null;
  readonly maxTtlSeconds: number | null;
}

export async function insertBinding(trx: Knex.Transaction, binding: NewBinding): Promise<Binding> {
  const [row] = await trx('federation_bindings')
    .insert({
      id: binding.id,
      org_id: binding.orgId,
      partner_id: binding.partnerId,
      agent_id: binding.agentId,
      conditions: JSON.stringify(binding.conditions),
      scopes: binding.scopes,
      max_ttl_seconds: binding.maxTtlSeconds,
    })
    .returning('*');
  return toBinding(row);
}

export async function findBinding(db: Db, id: string, forUpdate = false, withinOrg?: string): Promise<Binding | undefined> {
  const query = db<BindingRow>('federation_bindings')
    .where({ id, ...(withinOrg !== undefined && { org_id: withinOrg }) })
    .first();
  const row = await (forUpdate ? query.forUpdate() : query);
  return row ? toBinding(row) : undefined;
}

export async function listBindings(
  db: Db,
  query: { orgId: string; agentId?: string; partnerId?: string; afterId?: string; limit: number },
): Promise<{ bindings: Binding[]; hasMore: boolean }> {
  const rows: BindingRow[] = await db<BindingRow>('federation_bindings')
    .where('org_id', query.orgId)
    .modify((builder) => {
      if (query.agentId) builder.where('agent_id', query.agentId);
      if (query.partnerId) builder.where('partner_id', query.partnerId);
      if (query.afterId) builder.where('id', '>', query.afterId);
    })
    .orderBy('id')
    .limit(query.limit + 1);
  return { bindings: rows.slice(0, query.limit).map(toBinding), hasMore: rows.length > query.limit };
}

export async function deleteBindings(trx: Knex.Transaction, of: { readonly bindingId: string } | { readonly partnerId: string }): Promise<string[]> {
  const rows: { id: string }[] = await trx('federation_bindings')
    .where('bindingId' in of ? { id: of.bindingId } : { partner_id: of.partnerId })
    .delete()
    .returning('id');
  return rows.map((row) => row.id);
}

/** Marks revoked the live tokens issued through these bindings. */
export async function revokeBindingTokens(trx: Knex.Transaction, bindingIds: readonly string[], nowMs: number): Promise<number> {
  if (bindingIds.length === 0) return 0;
  const now = new Date(nowMs);
  return trx('access_tokens').whereIn('binding_id', bindingIds).whereNull('revoked_at').where('expires_at', '>', now).update({ revoked_at: now });
}

export async function bindingIdsOfPartner(db: Db, partnerId: string): Promise<string[]> {
  return (await db('federation_bindings').where({ partner_id: partnerId }).select('id')).map((row: { id: string }) => row.id);
}

/** Marks revoked the live tokens issued through any binding of the partner. */
export async function revokePartnerTokens(trx: Knex.Transaction, partnerId: string, nowMs: number): Promise<number> {
  return revokeBindingTokens(trx, await bindingIdsOfPartner(trx, partnerId), nowMs);
}

// The hot path of a federated grant: the partners of the token's issuer, and the agent named
// with its organization's status and its bindings to them, for concurrent grants at once.
const GRANT_CONTEXTS_SQL = `with input as (select * from unnest($1::text[], $2::uuid[]) with ordinality as i(issuer, agent_id, ord))
  select i.ord::int as ord,
         coalesce((select json_agg(p order by p.id) from federation_partners p where p.issuer = i.issuer and p.status = 'active'), '[]'::json) as partners,
         a.id as agent_id, a.status, a.scopes, a.org_id, o.status as org_status,
         coalesce((select json_agg(b order by b.id) from federation_bindings b join federation_partners p on p.id = b.partner_id
                    where b.agent_id = a.id and p.issuer = i.issuer and p.status = 'active'), '[]'::json) as bindings
    from input i
    left join agents a on a.id = i.agent_id
    left join organizations o on o.id = a.org_id`;

export interface AgentForGrant {
  readonly agentId: string;
  readonly status: string;
  readonly scopes: string[];
  readonly orgId: string;
  readonly orgStatus: string;
  /** Its bindings to the active partners of the issuer. */
  readonly bindings: Binding[];
}

export interface GrantContext {
  /** The active partners that claim the issuer (several for a shared issuer). */
  readonly partners: Partner[];
  readonly agent: AgentForGrant | undefined;
}

type Json<Row> = Omit<Row, 'created_at' | 'updated_at'> & { created_at: string; updated_at: string };

interface GrantContextRow {
  readonly ord: number;
  readonly partners: Json<PartnerRow>[];
  readonly agent_id: string | null;
  readonly status: string;
  readonly scopes: string[];
  readonly org_id: string;
  readonly org_status: string;
  readonly bindings: Json<BindingRow>[];
}

/** The grant contexts of (issuer, agent id) pairs, in their order; an agent id that is not a UUID is null. */
export async function grantContexts(query: RunPrepared, inputs: readonly { readonly issuer: string; readonly agentId: string | null }[]): Promise<GrantContext[]> {
  const rows = await query<GrantContextRow>('federation_grant_contexts', GRANT_CONTEXTS_SQL, [inputs.map((input) => input.issuer), inputs.map((input) => input.agentId)]);
  const byOrdinal = new Map(rows.map((row) => [row.ord, row]));
  return inputs.map((_input, index) => {
    const row = byOrdinal.get(index + 1);
    if (!row) throw new Error('federation_grant_contexts returned no row for an input');
    return {
      partners: row.partners.map(toPartner),
      agent:
        row.agent_id === null
          ? undefined
          : { agentId: row.agent_id, status: row.status, scopes: row.scopes, orgId: row.org_id, orgStatus: row.org_status, bindings: row.bindings.map(toBinding) },
    };
  });
}
