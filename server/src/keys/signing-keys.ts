/**
 * Signing keys live in the database so that every instance signs and verifies with the
 * same keys. The active key is the newest unretired key of SIGNING_ALG. Rotation adds a
 * new key and retires the old one, which stays in the JWKS until every token it can have
 * signed has expired: TTL after retirement, plus the refresh interval during which
 * another instance may still sign with it, plus a margin. Instances reload the key set
 * periodically and, rate-limited, when they meet an unknown kid.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import { actorOf, type Caller } from '../authorization/caller.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { SigningAlg } from '../config.js';
import { Forbidden } from '../errors.js';
import { base64url, encodeHeader, peekHeader, signJws, signJwt, verifyJwt, type JwtClaims, type VerificationKey } from './jwt.js';

export const KEY_REFRESH_INTERVAL_MS = 60_000;
const UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS = 5_000;
const RETIREMENT_MARGIN_SECONDS = 300;
const KEY_CREATION_LOCK = 7_242_002;

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  private_jwk: crypto.JsonWebKey;
  public_jwk: crypto.JsonWebKey;
  created_at: Date;
  retired_at: Date | null;
}

interface LoadedKey extends VerificationKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
  readonly encodedHeader: string;
  readonly publicJwk: Record<string, unknown>;
  readonly isRetired: boolean;
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

async function insertNewKey(trx: Knex.Transaction, alg: SigningAlg): Promise<string> {
  const { privateKey, publicKey } = generateKeyPair(alg);
  const publicJwk = publicKey.export({ format: 'jwk' });
  const kid = thumbprintOf(publicJwk);
  await trx('signing_keys').insert({
    kid,
    alg,
    private_jwk: privateKey.export({ format: 'jwk' }),
    public_jwk: { ...publicJwk, kid, alg, use: 'sig' },
  });
  return kid;
}

/**
 * Makes a new key of `alg` the active one and retires every other unretired key, audited.
 * Only the operator rotates: a key is the whole server's, not any agent's.
 */
export async function rotateSigningKey(knex: Knex, caller: Caller, alg: SigningAlg, clock: Clock): Promise<{ kid: string; retired: string[] }> {
  if (caller.kind !== 'operator') throw new Forbidden('Only the operator rotates signing keys.');
  return knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [KEY_CREATION_LOCK]);
    const kid = await insertNewKey(trx, alg);
    const retiredRows: { kid: string }[] = await trx('signing_keys')
      .whereNull('retired_at')
      .whereNot({ kid })
      .update({ retired_at: new Date(clock.now()) })
      .returning('kid');
    const retired = retiredRows.map((row) => row.kid);
    await appendAuditEvent(trx, { type: 'signing_key.rotated', actor: actorOf(caller), data: { kid, retired } });
    return { kid, retired };
  });
}

export class SigningKeys {
  private keys = new Map<string, LoadedKey>();
  private active: LoadedKey | undefined;
  private lastUnknownKidRefresh = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Goes up whenever a key this instance knew has left the set (withdrawn or expired out). */
  private withdrawals = 0;

  constructor(
    private readonly knex: Knex,
    private readonly alg: SigningAlg,
    private readonly tokenTtlSeconds: number,
    private readonly clock: Clock,
  ) {}

  /** Ensures an active key of our alg exists (exactly one, even when instances race) and loads the set. */
  async start(): Promise<void> {
    await this.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(?)', [KEY_CREATION_LOCK]);
      const current = await trx('signing_keys').where({ alg: this.alg }).whereNull('retired_at').first('kid');
      if (current) return;
      const kid = await insertNewKey(trx, this.alg);
      // A change of SIGNING_ALG retires the keys of the previous alg.
      await trx('signing_keys').whereNull('retired_at').whereNot({ kid }).update({ retired_at: new Date(this.clock.now()) });
    });
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), KEY_REFRESH_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async refresh(): Promise<void> {
    const publishedSince = this.tokenTtlSeconds + KEY_REFRESH_INTERVAL_MS / 1000 + RETIREMENT_MARGIN_SECONDS;
    const rows: KeyRow[] = await this.knex('signing_keys')
      .whereNull('retired_at')
      .orWhere('retired_at', '>', new Date(this.clock.now() - publishedSince * 1000))
      .orderBy('created_at', 'desc');
    const keys = new Map<string, LoadedKey>();
    let active: LoadedKey | undefined;
    for (const row of rows) {
      const loaded: LoadedKey = {
        kid: row.kid,
        alg: row.alg,
        privateKey: crypto.createPrivateKey({ key: row.private_jwk, format: 'jwk' }),
        publicKey: crypto.createPublicKey({ key: row.public_jwk, format: 'jwk' }),
        encodedHeader: encodeHeader(row.alg, row.kid),
        publicJwk: row.public_jwk as Record<string, unknown>,
        isRetired: row.retired_at !== null,
      };
      keys.set(row.kid, loaded);
      if (!active && !loaded.isRetired && row.alg === this.alg) active = loaded;
    }
    if (!active) throw new Error(`no active ${this.alg} signing key in the database`);
    if ([...this.keys.keys()].some((kid) => !keys.has(kid))) this.withdrawals += 1;
    this.keys = keys;
    this.active = active;
  }

  sign(claims: JwtClaims): string {
    const key = this.active;
    if (!key) throw new Error('signing keys are not loaded');
    return signJwt(key.alg, key.encodedHeader, key.privateKey, claims);
  }

  /**
   * A signed document that is not an access token (an audit digest): its own `typ`, and
   * none of the claims a token needs, so it can never pass for one.
   */
  signDocument(typ: string, payload: Record<string, unknown>): string {
    const key = this.active;
    if (!key) throw new Error('signing keys are not loaded');
    return signJws(key.alg, encodeHeader(key.alg, key.kid, typ), key.privateKey, payload);
  }

  /** Signature and kid only; the caller checks iss, exp and token state. A kid we do not
   * know may be a key another instance has just created: reload once (rate-limited). */
  async verify(token: string): Promise<JwtClaims | undefined> {
    let hasUnknownKid = false;
    const claims = verifyJwt(token, (kid) => this.keys.get(kid), () => (hasUnknownKid = true));
    if (claims || !hasUnknownKid || !(await this.refreshForUnknownKid())) return claims;
    return verifyJwt(token, (kid) => this.keys.get(kid));
  }

  jwks(): { keys: Record<string, unknown>[] } {
    return { keys: [...this.keys.values()].map((key) => key.publicJwk) };
  }

  /** Changes when a key is withdrawn: signatures verified before then must be checked again. */
  get revision(): number {
    return this.withdrawals;
  }

  get activeKid(): string | undefined {
    return this.active?.kid;
  }

  private async refreshForUnknownKid(): Promise<boolean> {
    const now = Date.now();
    if (now - this.lastUnknownKidRefresh < UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS) return false;
    this.lastUnknownKidRefresh = now;
    await this.refresh().catch(() => undefined);
    return true;
  }
}

export interface SigningKeySummary {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly createdAt: string;
  readonly retiredAt: string | null;
}

/** Every stored key, newest first, without key material (the operator's `keys list`). */
export async function listSigningKeys(knex: Knex): Promise<SigningKeySummary[]> {
  const rows: Pick<KeyRow, 'kid' | 'alg' | 'created_at' | 'retired_at'>[] = await knex('signing_keys')
    .orderBy('created_at', 'desc')
    .select('kid', 'alg', 'created_at', 'retired_at');
  return rows.map((row) => ({
    kid: row.kid,
    alg: row.alg,
    createdAt: row.created_at.toISOString(),
    retiredAt: row.retired_at?.toISOString() ?? null,
  }));
}

/**
 * The payload of a document (`signDocument`) of type `typ`, when a key stored in the
 * database, retired or not, signed it; undefined otherwise. The key is read by kid and must
 * hash to it (the kid is its RFC 7638 thumbprint), so a public key written into the database
 * under an existing kid cannot vouch for a forged document.
 */
export async function verifyDocumentSignature(knex: Knex, jws: string, typ: string): Promise<Record<string, unknown> | undefined> {
  const header = peekHeader(jws);
  if (!header || header.typ !== typ || typeof header.kid !== 'string') return undefined;
  const row: Pick<KeyRow, 'kid' | 'alg' | 'public_jwk'> | undefined = await knex('signing_keys').where({ kid: header.kid }).first('kid', 'alg', 'public_jwk');
  if (!row || thumbprintOf(row.public_jwk) !== row.kid) return undefined;
  const key: VerificationKey = { alg: row.alg, publicKey: crypto.createPublicKey({ key: row.public_jwk, format: 'jwk' }) };
  return verifyJwt(jws, (kid) => (kid === row.kid ? key : undefined));
}
