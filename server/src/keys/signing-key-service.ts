/**
 * Every change of the signing-key set, each under the key-set lock, in one transaction with
 * its audit row: the start-up check (an active key exists; keys once stored in clear are
 * rotated out), and the operator's rotate, rewrap and revoke. Only the operator changes
 * keys: a key is the whole server's, not any agent's.
 *
 * A key that was ever stored in clear is in old WAL and backups, so encrypting it in place
 * would not protect it: with a KEK, a clear key is retired (its private part erased, its
 * public part published until its tokens have expired) and a new, encrypted key signs.
 */
import type { Knex } from 'knex';
import { actorOf, requireScope, type Caller } from '../authorization/caller.js';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { SigningAlg } from '../config.js';
import { Forbidden, NotFound, ValidationFailed } from '../errors.js';
import { sealPrivateKey, unsealPrivateKey, type KeyRing } from './key-encryption.js';
import {
  eraseClearPrivateKeys,
  findActiveKid,
  findClearKids,
  findSigningKey,
  hasSealedKeys,
  insertSigningKey,
  listSealedKeys,
  listSigningKeys,
  lockSigningKeys,
  markRevoked,
  replaceSealedPrivateKey,
  retireKeysOtherThan,
  type SigningKeySummary,
} from './signing-key-store.js';

export interface SigningKeyServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
  /** Resolved on first use: reading keys needs no KEK, and on the embedded database finding one may create it. */
  readonly keyRing: () => KeyRing;
}

export interface Rotation {
  readonly kid: string;
  readonly retired: string[];
}

export interface StartupKeys {
  /** A key made because there was no active key of the configured alg. */
  readonly created?: string;
  /** Keys found stored in clear under a KEK: rotated out. */
  readonly rotatedOutOfClear?: Rotation & { readonly clear: string[] };
}

export interface Rewrap {
  readonly kekId: string;
  /** Keys re-encrypted under the current KEK. */
  readonly rewrapped: string[];
  /** Keys stored in clear: rotated out rather than encrypted (see above). */
  readonly rotatedOutOfClear?: Rotation & { readonly clear: string[] };
}

/** A signing key as the API shows it: no key material, nor how or under which KEK it is stored. */
export interface SigningKeyState {
  readonly kid: string;
  readonly alg: SigningAlg;
  readonly createdAt: string;
  readonly retiredAt: string | null;
  readonly revokedAt: string | null;
  readonly state: 'active' | 'retired' | 'revoked';
}

export interface Revocation {
  readonly kid: string;
  /** False when it had been revoked before (nothing changed). */
  readonly revoked: boolean;
  /** The new active key, when the revoked key was the active one. */
  readonly replacedBy: string | null;
}

const SAFE_KID = /^[A-Za-z0-9_-]{1,128}$/;

function requireOperator(caller: Caller): void {
  if (caller.kind !== 'operator') throw new Forbidden('Only the operator manages signing keys.');
}

export class SigningKeyService {
  constructor(private readonly deps: SigningKeyServiceDeps) {}

  /** What every start does before loading the keys (the system's act, not the operator's). */
  async prepareForStart(alg: SigningAlg): Promise<StartupKeys> {
    const ring = this.deps.keyRing();
    return this.deps.knex.transaction(async (trx) => {
      await lockSigningKeys(trx);
      if (ring.current) {
        const rotated = await this.rotateOutClearKeys(trx, alg, ring, 'system');
        if (rotated) return { rotatedOutOfClear: rotated };
      }
      if (await findActiveKid(trx, alg)) return {};
      await this.refuseClearKeyBesideSealed(trx, ring);
      const kid = await insertSigningKey(trx, alg, ring);
      // A change of SIGNING_ALG retires the keys of the previous alg.
      await retireKeysOtherThan(trx, kid, this.now());
      return { created: kid };
    });
  }

  /** Makes a new key of `alg` the active one and retires every other unretired key. */
  async rotate(caller: Caller, alg: SigningAlg): Promise<Rotation> {
    requireOperator(caller);
    const ring = this.deps.keyRing();
    return this.deps.knex.transaction(async (trx) => {
      await lockSigningKeys(trx);
      const rotation = await this.rotateWithin(trx, alg, ring);
      await appendAuditEvent(trx, { type: 'signing_key.rotated', actor: actorOf(caller), data: { ...rotation } });
      return rotation;
    });
  }

  /**
   * Re-encrypts every private key under KEY_ENCRYPTION_KEY (from KEY_ENCRYPTION_KEY_PREVIOUS,
   * during a KEK rotation). Idempotent: keys already under the current KEK are left alone.
   * A key under a KEK this process lacks stops it, naming the kid and the KEK id, with
   * nothing changed.
   */
  async rewrap(caller: Caller, alg: SigningAlg): Promise<Rewrap> {
    requireOperator(caller);
    const ring = this.deps.keyRing();
    const current = ring.current;
    if (!current) throw new ValidationFailed('KEY_ENCRYPTION_KEY is not set: there is no key-encryption key to encrypt the signing keys under.');
    return this.deps.knex.transaction(async (trx) => {
      await lockSigningKeys(trx);
      const rotatedOutOfClear = await this.rotateOutClearKeys(trx, alg, ring, actorOf(caller));
      const rewrapped: string[] = [];
      const from = new Set<string>();
      for (const key of await listSealedKeys(trx)) {
        if (key.privateKey.form !== 'sealed' || key.privateKey.kekId === current.id) continue;
        const plaintext = unsealPrivateKey(ring, key.kid, key.privateKey.kekId, key.privateKey.sealed);
        await replaceSealedPrivateKey(trx, key.kid, current.id, sealPrivateKey(current, key.kid, plaintext));
        plaintext.fill(0);
        rewrapped.push(key.kid);
        from.add(key.privateKey.kekId);
      }
      if (rewrapped.length > 0) {
        await appendAuditEvent(trx, { type: 'signing_key.rewrapped', actor: actorOf(caller), data: { kekId: current.id, rewrapped, from: [...from] } });
      }
      return { kekId: current.id, rewrapped, ...(rotatedOutOfClear ? { rotatedOutOfClear } : {}) };
    });
  }

  /**
   * Withdraws a key at once: out of the JWKS, and every token it signed inactive. The
   * active key is first replaced by a new one of `alg`.
   */
  async revoke(caller: Caller, kid: string, alg: SigningAlg): Promise<Revocation> {
    requireOperator(caller);
    const ring = this.deps.keyRing();
    return this.deps.knex.transaction(async (trx) => {
      await lockSigningKeys(trx);
      const key = await findSigningKey(trx, kid);
      if (!key) throw new NotFound('Signing key', SAFE_KID.test(kid) ? `No signing key has kid ${kid}.` : 'Signing key not found.');
      if (key.revokedAt) return { kid, revoked: false, replacedBy: null };
      const replacedBy = key.retiredAt === null ? (await this.rotateWithin(trx, alg, ring)).kid : null;
      await markRevoked(trx, kid, this.now());
      await appendAuditEvent(trx, { type: 'signing_key.revoked', actor: actorOf(caller), data: { kid, replacedBy } });
      return { kid, revoked: true, replacedBy };
    });
  }

  list(): Promise<SigningKeySummary[]> {
    return listSigningKeys(this.deps.knex);
  }

  /**
   * The keys, newest first, for audit:read (GET /api/v1/keys). The key set is the whole
   * server's: a tenant sees the keys that sign or signed its tokens, but not the revoked
   * ones (out of the JWKS), whose dates would tell it of the platform's incidents.
   */
  async listStates(caller: Caller): Promise<SigningKeyState[]> {
    requireScope(caller, 'audit:read');
    const seesRevoked = caller.kind === 'operator' ? caller.orgId === undefined : caller.isPlatform;
    return (await listSigningKeys(this.deps.knex)).filter((key) => seesRevoked || !key.revokedAt).map(({ kid, alg, createdAt, retiredAt, revokedAt }) => ({
      kid,
      alg,
      createdAt,
      retiredAt,
      revokedAt,
      state: revokedAt ? 'revoked' : retiredAt ? 'retired' : 'active',
    }));
  }

  private now(): Date {
    return new Date(this.deps.clock.now());
  }

  /** A process without a KEK (a CLI run without it, say) must not add a clear key to encrypted ones. */
  private async refuseClearKeyBesideSealed(trx: Knex.Transaction, ring: KeyRing): Promise<void> {
    if (!ring.current && (await hasSealedKeys(trx))) {
      throw new ValidationFailed('The signing keys in this database are encrypted: set KEY_ENCRYPTION_KEY, or a new key would be stored in clear.');
    }
  }

  private async rotateWithin(trx: Knex.Transaction, alg: SigningAlg, ring: KeyRing): Promise<Rotation> {
    await this.refuseClearKeyBesideSealed(trx, ring);
    const kid = await insertSigningKey(trx, alg, ring);
    const retired = await retireKeysOtherThan(trx, kid, this.now());
    if (ring.current) await eraseClearPrivateKeys(trx);
    return { kid, retired };
  }

  private async rotateOutClearKeys(trx: Knex.Transaction, alg: SigningAlg, ring: KeyRing, actor: string): Promise<StartupKeys['rotatedOutOfClear']> {
    const clear = await findClearKids(trx);
    if (clear.length === 0) return undefined;
    const rotation = await this.rotateWithin(trx, alg, ring);
    await appendAuditEvent(trx, { type: 'signing_key.rotated', actor, data: { ...rotation, reason: 'private keys were stored in clear', clear } });
    return { ...rotation, clear };
  }
}
