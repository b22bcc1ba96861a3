/**
 * Signing keys live in the database so that every instance signs and verifies with the
 * same keys. The active key is the newest unretired key of SIGNING_ALG. Rotation adds a
 * new key and retires the old one, which stays in the JWKS until every token it can have
 * signed has expired: TTL after retirement, plus the refresh interval during which
 * another instance may still sign with it, plus a margin. Instances reload the key set
 * periodically and, rate-limited, when they meet an unknown kid.
 *
 * Private keys are stored encrypted (key-encryption.ts): only the active key's is
 * decrypted, once per key, when it is loaded; signing uses the decrypted key object. A
 * revoked key (signing-key-service.ts) leaves the set at the next reload; until then the
 * token-state lookup refuses what it signed, the JWKS leaves it out, and an instance that
 * meets it reloads at once.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Knex } from 'knex';
import type { Clock } from '../clock.js';
import type { SigningAlg } from '../config.js';
import { encodeHeader, signJws, signJwt, verifyJwt, type JwtClaims, type VerificationKey } from './jwt.js';
import { SigningKeyUnavailable, unsealPrivateKey, type KeyRing } from './key-encryption.js';
import { findRevokedKids, loadPublishedKeys, type StoredSigningKey } from './signing-key-store.js';

export const KEY_REFRESH_INTERVAL_MS = 60_000;
const UNKNOWN_KID_REFRESH_MIN_INTERVAL_MS = 5_000;
const RETIREMENT_MARGIN_SECONDS = 300;
/** How long the JWKS waits for the database's word on revoked keys before answering from memory. */
const JWKS_REVOCATION_CHECK_MS = 250;

/** How long a retired key stays published: after this, no token it signed can be live. */
export function publicationWindowSeconds(tokenTtlSeconds: number): number {
  return tokenTtlSeconds + KEY_REFRESH_INTERVAL_MS / 1000 + RETIREMENT_MARGIN_SECONDS;
}

interface LoadedKey extends VerificationKey {
  readonly kid: string;
  readonly publicJwk: Record<string, unknown>;
  readonly isRetired: boolean;
}

interface ActiveKey extends LoadedKey {
  readonly privateKey: KeyObject;
  readonly encodedHeader: string;
}

export interface VerifiedToken {
  readonly claims: JwtClaims;
  /** The key that signed it. */
  readonly kid: string;
}

export interface SigningKeysOptions {
  readonly keyRing: KeyRing;
  /** A periodic reload failed (the database is down, or the new active key cannot be decrypted): the old set stays. */
  readonly onRefreshFailed?: (error: unknown) => void;
}

export class SigningKeys {
  private keys = new Map<string, LoadedKey>();
  private active: ActiveKey | undefined;
  private lastUnknownKidRefresh = 0;
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> | undefined;
  /** Goes up whenever a key this instance knew has left the set (withdrawn or expired out). */
  private withdrawals = 0;

  constructor(
    private readonly knex: Knex,
    private readonly alg: SigningAlg,
    private readonly tokenTtlSeconds: number,
    private readonly clock: Clock,
    private readonly options: SigningKeysOptions,
  ) {}

  /** Loads the set (an active key must exist: SigningKeyService.prepareForStart) and keeps it fresh. */
  async start(): Promise<void> {
    await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch((error: unknown) => this.options.onRefreshFailed?.(error)), KEY_REFRESH_INTERVAL_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Reloads the set; concurrent calls share one reload. */
  refresh(): Promise<void> {
    this.refreshing ??= this.load().finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }

  private async load(): Promise<void> {
    const retiredAfter = new Date(this.clock.now() - publicationWindowSeconds(this.tokenTtlSeconds) * 1000);
    const stored = await loadPublishedKeys(this.knex, retiredAfter);
    const keys = new Map<string, LoadedKey>();
    let activeRow: StoredSigningKey | undefined;
    for (const row of stored) {
      keys.set(row.kid, {
        kid: row.kid,
        alg: row.alg,
        publicKey: crypto.createPublicKey({ key: row.publicJwk as crypto.JsonWebKey, format: 'jwk' }),
        publicJwk: row.publicJwk,
        isRetired: row.retiredAt !== null,
      });
      if (!activeRow && row.retiredAt === null && row.alg === this.alg) activeRow = row;
    }
    if (!activeRow) throw new Error(`no active ${this.alg} signing key in the database`);
    // The private key is decrypted once per key, not at every reload and never per signature.
    const active: ActiveKey =
      this.active?.kid === activeRow.kid
        ? this.active
        : {
            ...(keys.get(activeRow.kid) as LoadedKey),
            privateKey: this.privateKeyOf(activeRow),
            encodedHeader: encodeHeader(activeRow.alg, activeRow.kid),
          };
    if ([...this.keys.keys()].some((kid) => !keys.has(kid))) this.withdrawals += 1;
    this.keys = keys;
    this.active = active;
  }

  private privateKeyOf(row: StoredSigningKey): KeyObject {
    const stored = row.privateKey;
    if (stored.form === 'clear') return crypto.createPrivateKey({ key: stored.jwk, format: 'jwk' });
    if (stored.form === 'none') throw new SigningKeyUnavailable(`signing key ${row.kid} has no private key stored`);
    const der = unsealPrivateKey(this.options.keyRing, row.kid, stored.kekId, stored.sealed);
    try {
      return crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } finally {
      der.fill(0);
    }
  }

  sign(claims: JwtClaims): string {
    return this.signWithKid(claims).token;
  }

  /** The token, and the kid of the key that signed it. */
  signWithKid(claims: JwtClaims): { readonly token: string; readonly kid: string } {
    const key = this.active;
    if (!key) throw new Error('signing keys are not loaded');
    return { token: signJwt(key.alg, key.encodedHeader, key.privateKey, claims), kid: key.kid };
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
  async verify(token: string): Promise<VerifiedToken | undefined> {
    let hasUnknownKid = false;
    let kid = '';
    const keyOf = (wanted: string) => {
      kid = wanted;
      return this.keys.get(wanted);
    };
    const claims = verifyJwt(token, keyOf, () => (hasUnknownKid = true));
    if (claims) return { claims, kid };
    if (!hasUnknownKid || !(await this.refreshForUnknownKid())) return undefined;
    const reloaded = verifyJwt(token, keyOf);
    return reloaded && { claims: reloaded, kid };
  }

  /**
   * The published keys, less any that the database says were revoked since the last reload
   * (which is then done at once). Should the database not answer in time, from memory: the
   * set is at most one reload old, and every token of a revoked key is refused anyway.
   */
  async jwks(): Promise<{ keys: Record<string, unknown>[] }> {
    const loaded = [...this.keys.values()];
    let revoked: string[] = [];
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<string[]>((resolve) => (timer = setTimeout(() => resolve([]), JWKS_REVOCATION_CHECK_MS)));
    try {
      revoked = await Promise.race([findRevokedKids(this.knex, loaded.map((key) => key.kid)).catch(() => []), deadline]);
    } finally {
      clearTimeout(timer);
    }
    if (revoked.length > 0) this.noteRevokedKey();
    return { keys: loaded.filter((key) => !revoked.includes(key.kid)).map((key) => key.publicJwk) };
  }

  /** A key in this set has been revoked (seen in the database): reload now rather than at the next interval. */
  noteRevokedKey(): void {
    void this.refresh().catch((error: unknown) => this.options.onRefreshFailed?.(error));
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
