/**
 * The signing_keys table. A row's private key is in clear (`private_jwk`), sealed under a
 * key-encryption key (`sealed_private_key`, `kek_id`), or gone (retired after being stored
 * in clear, or revoked); see migration 20261201090000_signing_keys_at_rest.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { SigningAlg } from '../config.js';
import { base64url, peekHeader, verifyJwt, type VerificationKey } from './jwt.js';
import { sealPrivateKey, type KeyRing } from './key-encryption.js';

const KEY_CREATION_LOCK = 7_242_002;

export interface StoredSigningKey {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly privateKey:
    | { readonly form: 'clear'; readonly jwk: crypto.JsonWebKey }
    | { readonly form: 'sealed'; readonly kekId: string; readonly sealed: Buffer }
    | { readonly form: 'none' };
  readonly publicJwk: Record<string, unknown>;
  readonly createdAt: Date;
  readonly retiredAt: Date | null;
  readonly revokedAt: Date | null;
}

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  private_jwk: crypto.JsonWebKey | null;
  sealed_private_key: Buffer | null;
  kek_id: string | null;
  public_jwk: Record<string, unknown>;
  created_at: Date;
  retired_at: Date | null;
  revoked_at: Date | null;
}

function toStoredKey(row: KeyRow): StoredSigningKey {
  return {
    kid: row.kid,
    alg: row.alg,
    privateKey: row.sealed_private_key
      ? { form: 'sealed', kekId: row.kek_id as string, sealed: Buffer.from(row.sealed_private_key) }
      : row.private_jwk
        ? { form: 'clear', jwk: row.private_jwk }
        : { form: 'none' },
    publicJwk: row.public_jwk,
    createdAt: row.created_at,
    retiredAt: row.retired_at,
    revokedAt: row.revoked_at,
  };
}

/** Serialises every change of the key set, across instances (held to the end of `trx`). */
export async function lockSigningKeys(trx: Knex.Transaction): Promise<void> {
  await trx.raw('select pg_advisory_xact_lock(?)', [KEY_CREATION_LOCK]);
}

/** RFC 7638 thumbprint, used as the kid. */
function thumbprintOf(jwk: crypto.JsonWebKey): string {
  const members =
    jwk.kty === 'RSA'
      ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
      : jwk.kty === 'EC'
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return base64url(crypto.createHash('sha256').update(JSON.stringify(members)).digest());
}

function generateKeyPair(alg: SigningAlg): crypto.KeyPairKeyObjectResult {
  if (alg === 'RS256') return crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  if (alg === 'ES256') return crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return crypto.generateKeyPairSync('ed25519');
}

/** A new key of `alg`, its private part sealed under the ring's current KEK (in clear without one). */
export async function insertSigningKey(trx: Knex.Transaction, alg: SigningAlg, ring: KeyRing): Promise<string> {
  const { privateKey, publicKey } = generateKeyPair(alg);
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprintOf(publicJwk);
  const privatePart = ring.current
    ? { sealed_private_key: sealPrivateKey(ring.current, kid, privateKey.export({ format: 'der', type: 'pkcs8' })), kek_id: ring.current.id }
    : { private_jwk: privateKey.export({ format: 'jwk' }) };
  await trx('signing_keys').insert({ kid, alg, ...privatePart, public_jwk: { ...publicJwk, kid, alg, use: 'sig' } });
  return kid;
}

export async function findActiveKid(trx: Knex.Transaction, alg: SigningAlg): Promise<string | undefined> {
  const row = await trx('signing_keys').where({ alg }).whereNull('retired_at').first('kid');
  return row?.kid;
}

/** Retires every unretired key but `kid`; the retired kids. */
export async function retireKeysOtherThan(trx: Knex.Transaction, kid: string, now: Date): Promise<string[]> {
  const rows: { kid: string }[] = await trx('signing_keys').whereNull('retired_at').whereNot({ kid }).update({ retired_at: now }).returning('kid');
  return rows.map((row) => row.kid);
}

/** The kids of keys whose private part is stored in clear. */
export async function findClearKids(trx: Knex.Transaction): Promise<string[]> {
  const rows: { kid: string }[] = await trx('signing_keys').whereNotNull('private_jwk').orderBy('created_at').select('kid');
  return rows.map((row) => row.kid);
}

export async function hasSealedKeys(trx: Knex.Transaction): Promise<boolean> {
  return (await trx('signing_keys').whereNotNull('sealed_private_key').first('kid')) !== undefined;
}

/** Erases every private key stored in clear (their keys must be retired first). */
export async function eraseClearPrivateKeys(trx: Knex.Transaction): Promise<void> {
  await trx('signing_keys').whereNotNull('private_jwk').whereNotNull('retired_at').update({ private_jwk: null });
}

export async function findSigningKey(db: Knex | Knex.Transaction, kid: string): Promise<StoredSigningKey | undefined> {
  const row: KeyRow | undefined = await db('signing_keys').where({ kid }).first();
  return row && toStoredKey(row);
}

/** Every key whose private part is sealed, oldest first. */
export async function listSealedKeys(trx: Knex.Transaction): Promise<StoredSigningKey[]> {
  const rows: KeyRow[] = await trx('signing_keys').whereNotNull('sealed_private_key').orderBy('created_at');
  return rows.map(toStoredKey);
}

export async function replaceSealedPrivateKey(trx: Knex.Transaction, kid: string, kekId: string, sealed: Buffer): Promise<void> {
  await trx('signing_keys').where({ kid }).update({ sealed_private_key: sealed, kek_id: kekId });
}

/** Withdraws a retired key: revoked, and its private part erased. */
export async function markRevoked(trx: Knex.Transaction, kid: string, now: Date): Promise<void> {
  await trx('signing_keys')
    .where({ kid })
    .update({ revoked_at: now, retired_at: trx.raw('coalesce(retired_at, ?)', [now]), private_jwk: null, sealed_private_key: null, kek_id: null });
}

/** The keys to publish: unrevoked, and unretired or retired after `retiredAfter`; newest first. */
export async function loadPublishedKeys(knex: Knex, retiredAfter: Date): Promise<StoredSigningKey[]> {
  const rows: KeyRow[] = await knex('signing_keys')
    .whereNull('revoked_at')
    .where((builder) => builder.whereNull('retired_at').orWhere('retired_at', '>', retiredAfter))
    .orderBy('created_at', 'desc');
  return rows.map(toStoredKey);
}

/** Those of `kids` that have been revoked. */
export async function findRevokedKids(knex: Knex, kids: readonly string[]): Promise<string[]> {
  if (kids.length === 0) return [];
  const rows: { kid: string }[] = await knex('signing_keys').whereIn('kid', kids).whereNotNull('revoked_at').select('kid');
  return rows.map((row) => row.kid);
}

/**
 * Erases the private part of keys retired (or revoked) before `retiredBefore`: no token
 * they signed can still be live, and nothing will be signed with them again. Their public
 * part stays, to verify the audit digests they signed (audit/audit-digests.ts).
 */
export async function purgeRetiredKeys(trx: Knex.Transaction, retiredBefore: Date): Promise<number> {
  return trx('signing_keys')
    .where('retired_at', '<', retiredBefore)
    .where((builder) => builder.whereNotNull('private_jwk').orWhereNotNull('sealed_private_key'))
    .update({ private_jwk: null, sealed_private_key: null, kek_id: null });
}

/**
 * The payload of a document (`SigningKeys.signDocument`) of type `typ`, when a stored key
 * that was never revoked signed it, retired or not; undefined otherwise. The key is read
 * by kid and must hash to it (the kid is its RFC 7638 thumbprint), so a public key written
 * into the database under an existing kid cannot vouch for a forged document. A revoked
 * key was compromised: what it signed proves nothing.
 */
export async function verifyDocumentSignature(knex: Knex, jws: string, typ: string): Promise<Record<string, unknown> | undefined> {
  const header = peekHeader(jws);
  if (!header || header.typ !== typ || typeof header.kid !== 'string') return undefined;
  const row: Pick<KeyRow, 'kid' | 'alg' | 'public_jwk' | 'revoked_at'> | undefined = await knex('signing_keys')
    .where({ kid: header.kid })
    .first('kid', 'alg', 'public_jwk', 'revoked_at');
  if (!row || row.revoked_at !== null || thumbprintOf(row.public_jwk as crypto.JsonWebKey) !== row.kid) return undefined;
  const key: VerificationKey = { alg: row.alg, publicKey: crypto.createPublicKey({ key: row.public_jwk as crypto.JsonWebKey, format: 'jwk' }) };
  return verifyJwt(jws, (kid) => (kid === row.kid ? key : undefined));
}

export interface SigningKeySummary {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  readonly revokedAt: string | null;
  /** How the private key is stored: `encrypted` (under `kekId`), `clear`, or `none` (erased). */
  readonly privateKey: 'encrypted' | 'clear' | 'none';
  readonly kekId: string | null;
}

/** Every stored key, newest first, without key material (the operator's `keys list`). */
export async function listSigningKeys(knex: Knex): Promise<SigningKeySummary[]> {
  const rows: (Pick<KeyRow, 'kid' | 'alg' | 'created_at' | 'retired_at' | 'revoked_at' | 'kek_id'> & { is_clear: boolean })[] = await knex(
    'signing_keys',
  )
    .orderBy('created_at', 'desc')
    .select('kid', 'alg', 'created_at', 'retired_at', 'revoked_at', 'kek_id', knex.raw('private_jwk is not null as is_clear'));
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    createdAt: row.created_at.toISOString(),
    retiredAt: row.retired_at?.toISOString() ?? null,
    revokedAt: row.revoked_at?.toISOString() ?? null,
    privateKey: row.kek_id ? 'encrypted' : row.is_clear ? 'clear' : 'none',
    kekId: row.kek_id,
  }));
}
