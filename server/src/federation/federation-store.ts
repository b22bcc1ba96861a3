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

const toPartner = (row: PartnerRow): Partner => ({
  partnerId: row.id,
  name: row.name,
  preset: row.preset,
  issuer: row.issuer,
  status: row.status,
  jwksUri: row.jwks_uri,
  keys: row.keys,
  audiences: row.audiences,
  algorithms: row.algorithms,
  maxTokenAgeSeconds: row.max_token_age_seconds,
  singleUseJti: row.single_use_jti,
  requiredClaims: row.required_claims,
  orgIds: row.org_ids,
  createdAt: row.created_at.toISOString(),
  updatedAt: row.updated_at.toISOString(),
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

export type PartnerFields = Omit<Partner, 'partnerId' | 'status' | 'createdAt' | 'updatedAt'>;

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
    .update({ ...partnerColumns(fields), ...(fields.status && { status: fields.status }), updated_at: trx.raw(`date_trunc('milliseconds', now())`) })
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

// The hot path of a federated grant: prepared statements, two round trips in all.
const PARTNERS_BY_ISSUER_SQL = `select * from federation_partners where issuer = $1 and status = 'active' order by id`;

/** The active partners that claim this issuer (several for a shared issuer). */
export async function partnersOfIssuer(query: RunPrepared, issuer: string): Promise<Partner[]> {
  return (await query<PartnerRow>('federation_partners_of_issuer', PARTNERS_BY_ISSUER_SQL, [issuer])).map(toPartner);
}

const AGENT_FOR_GRANT_SQL = `select a.id, a.status, a.scopes, a.org_id, o.status as org_status,
    coalesce((select json_agg(b order by b.id) from federation_bindings b where b.agent_id = a.id and b.partner_id = any($2::uuid[])), '[]'::json) as bindings
  from agents a join organizations o on o.id = a.org_id where a.id = $1::uuid`;

export interface AgentForGrant {
  readonly agentId: string;
  readonly status: string;
  readonly scopes: string[];
  readonly orgId: string;
  readonly orgStatus: string;
  /** Its bindings to the partners asked about. */
  readonly bindings: Binding[];
}

/** The agent a federated grant names, its organization's status and its bindings to these partners, in one statement. */
export async function agentForGrant(query: RunPrepared, agentId: string, partnerIds: readonly string[]): Promise<AgentForGrant | undefined> {
  const [row] = await query<{ id: string; status: string; scopes: string[]; org_id: string; org_status: string; bindings: (Omit<BindingRow, 'created_at'> & { created_at: string })[] }>(
    'federation_agent_for_grant',
    AGENT_FOR_GRANT_SQL,
    [agentId, partnerIds],
  );
  if (!row) return undefined;
  return { agentId: row.id, status: row.status, scopes: row.scopes, orgId: row.org_id, orgStatus: row.org_status, bindings: row.bindings.map(toBinding) };
}
