/**
 * Client secrets: 256 random bits behind an `sk_live_` prefix, shown once, stored only
 * as SHA-256. A fast hash is right for secrets of this entropy (a slow password hash
 * would cap issuance at tens per second and add nothing against brute force), and the
 * comparison is constant-time.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { AgentStatus } from './agent.js';

export const SECRET_PREFIX = 'sk_live_';

export interface Credential {
  readonly credentialId: string;
  readonly clientId: string;
  readonly status: 'active' | 'revoked';
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

interface CredentialRow {
  id: string;
  agent_id: string;
  created_at: Date;
  revoked_at: Date | null;
}

const toCredential = (row: CredentialRow): Credential => ({
  credentialId: row.id,
  clientId: row.agent_id,
  status: row.revoked_at ? 'revoked' : 'active',
  createdAt: row.created_at.toISOString(),
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

export function generateClientSecret(): string {
  return SECRET_PREFIX + crypto.randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string): Buffer {
  return crypto.createHash('sha256').update(secret, 'utf8').digest();
}

export async function insertCredential(
  trx: Knex.Transaction,
  agentId: string,
  secret: string,
): Promise<Credential> {
  const [row] = await trx('credentials')
    .insert({ id: crypto.randomUUID(), agent_id: agentId, secret_hash: hashClientSecret(secret) })
    .returning(['id', 'agent_id', 'created_at', 'revoked_at']);
  return toCredential(row);
}

export async function listCredentials(db: Knex, agentId: string): Promise<Credential[]> {
  const rows: CredentialRow[] = await db('credentials')
    .where({ agent_id: agentId })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'agent_id', 'created_at', 'revoked_at');
  return rows.map(toCredential);
}

/** Revokes one credential and the live tokens it obtained; undefined when there is none. */
export async function revokeCredential(
  trx: Knex.Transaction,
  agentId: string,
  credentialId: string,
): Promise<{ credential: Credential; isNewlyRevoked: boolean } | undefined> {
  const row: CredentialRow | undefined = await trx('credentials').where({ id: credentialId, agent_id: agentId }).forUpdate().first();
  if (!row) return undefined;
  if (row.revoked_at) return { credential: toCredential(row), isNewlyRevoked: false };
  const [revoked] = await trx('credentials')
    .where({ id: credentialId })
    .update({ revoked_at: trx.fn.now() })
    .returning(['id', 'agent_id', 'created_at', 'revoked_at']);
  await trx('access_tokens')
    .where({ credential_id: credentialId })
    .whereNull('revoked_at')
    .where('expires_at', '>', trx.fn.now())
    .update({ revoked_at: trx.fn.now() });
  return { credential: toCredential(revoked), isNewlyRevoked: true };
}

export async function revokeAllCredentials(trx: Knex.Transaction, agentId: string): Promise<number> {
  return trx('credentials').where({ agent_id: agentId }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() });
}

export interface ClientForAuthentication {
  readonly agentId: string;
  readonly status: AgentStatus;
  readonly scopes: string[];
  readonly credentials: { readonly credentialId: string; readonly secretHash: Buffer }[];
}

const DUMMY_HASH = hashClientSecret('sk_live_dummy-for-constant-time');

/**
 * The credential whose hash matches the presented secret's hash, or undefined. Every
 * stored hash is compared (and a dummy when there is none), so an unknown client costs
 * what a wrong secret costs. The caller hashes the secret once per request, however many
 * times it decides.
 */
export function matchCredential(
  client: ClientForAuthentication | undefined,
  presented: Buffer,
): { credentialId: string } | undefined {
  const candidates = client?.credentials.length ? client.credentials : [{ credentialId: '', secretHash: DUMMY_HASH }];
  let matched: string | undefined;
  for (const candidate of candidates) {
    const isEqual = candidate.secretHash.length === presented.length && crypto.timingSafeEqual(candidate.secretHash, presented);
    if (isEqual && client) matched = candidate.credentialId;
  }
  return matched ? { credentialId: matched } : undefined;
}
