/** Database access for credentials: only SHA-256 hashes of secrets are stored (oauth/client-secrets.ts). */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { hashClientSecret } from '../oauth/client-secrets.js';

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

export async function listCredentials(db: Knex | Knex.Transaction, agentId: string): Promise<Credential[]> {
  const rows: CredentialRow[] = await db('credentials')
    .where({ agent_id: agentId })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'agent_id', 'created_at', 'revoked_at');
  return rows.map(toCredential);
}

/** Revokes one credential of the agent; undefined when it has none of that id. */
export async function revokeCredential(
  trx: Knex.Transaction,
  agentId: string,
  credentialId: string,
  nowMs: number,
): Promise<{ credential: Credential; isNewlyRevoked: boolean } | undefined> {
  const row: CredentialRow | undefined = await trx('credentials').where({ id: credentialId, agent_id: agentId }).forUpdate().first();
  if (!row) return undefined;
  if (row.revoked_at) return { credential: toCredential(row), isNewlyRevoked: false };
  const [revoked] = await trx('credentials')
    .where({ id: credentialId })
    .update({ revoked_at: new Date(nowMs) })
    .returning(['id', 'agent_id', 'created_at', 'revoked_at']);
  return { credential: toCredential(revoked), isNewlyRevoked: true };
}

export async function revokeAllCredentials(trx: Knex.Transaction, agentId: string, nowMs: number): Promise<number> {
  return trx('credentials').where({ agent_id: agentId }).whereNull('revoked_at').update({ revoked_at: new Date(nowMs) });
}
