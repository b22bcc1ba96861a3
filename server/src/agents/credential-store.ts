/** Database access for credentials: only SHA-256 hashes of secrets are stored (oauth/client-secrets.ts). */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import { hashClientSecret } from '../oauth/client-secrets.js';

export interface Credential {
  readonly credentialId: string;
  readonly clientId: string;
  /** Its agent's organization. */
  readonly orgId: string;
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

/** The agent a credential belongs to, as far as its representation needs. */
export interface CredentialOwner {
  readonly agentId: string;
  readonly orgId: string;
}

const toCredential = (row: CredentialRow, owner: CredentialOwner): Credential => ({
  credentialId: row.id,
  clientId: row.agent_id,
  orgId: owner.orgId,
  status: row.revoked_at ? 'revoked' : 'active',
  createdAt: row.created_at.toISOString(),
  revokedAt: row.revoked_at?.toISOString() ?? null,
});

export async function insertCredential(trx: Knex.Transaction, owner: CredentialOwner, secret: string): Promise<Credential> {
  const [row] = await trx('credentials')
    .insert({ id: crypto.randomUUID(), agent_id: owner.agentId, secret_hash: hashClientSecret(secret) })
    .returning(['id', 'agent_id', 'created_at', 'revoked_at']);
  return toCredential(row, owner);
}

export async function listCredentials(db: Knex | Knex.Transaction, owner: CredentialOwner): Promise<Credential[]> {
  const rows: CredentialRow[] = await db('credentials')
    .where({ agent_id: owner.agentId })
    .orderBy([{ column: 'created_at' }, { column: 'id' }])
    .select('id', 'agent_id', 'created_at', 'revoked_at');
  return rows.map((row) => toCredential(row, owner));
}

/** Revokes one credential of the agent; undefined when it has none of that id. */
export async function revokeCredential(
  trx: Knex.Transaction,
  owner: CredentialOwner,
  credentialId: string,
  nowMs: number,
): Promise<{ credential: Credential; isNewlyRevoked: boolean } | undefined> {
  const row: CredentialRow | undefined = await trx('credentials').where({ id: credentialId, agent_id: owner.agentId }).forUpdate().first();
  if (!row) return undefined;
  if (row.revoked_at) return { credential: toCredential(row, owner), isNewlyRevoked: false };
  const [revoked] = await trx('credentials')
    .where({ id: credentialId })
    .update({ revoked_at: new Date(nowMs) })
    .returning(['id', 'agent_id', 'created_at', 'revoked_at']);
  return { credential: toCredential(revoked, owner), isNewlyRevoked: true };
}

export async function revokeAllCredentials(trx: Knex.Transaction, agentId: string, nowMs: number): Promise<number> {
  return trx('credentials').where({ agent_id: agentId }).whereNull('revoked_at').update({ revoked_at: new Date(nowMs) });
}
