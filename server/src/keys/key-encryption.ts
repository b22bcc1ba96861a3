/**
 * Signing keys at rest: each private key is encrypted with AES-256-GCM under a
 * key-encryption key (KEK) from KEY_ENCRYPTION_KEY, with the signing key's kid as
 * associated data, so that a ciphertext copied onto another key's row does not decrypt.
 * The KEK's id (a short hash of it) is stored beside the ciphertext, so that during a KEK
 * rotation the right one of KEY_ENCRYPTION_KEY and KEY_ENCRYPTION_KEY_PREVIOUS is chosen,
 * and a key under a KEK this server lacks is named instead of failing as garbage.
 *
 * Sealed form: version byte 1 ‖ 12-byte nonce ‖ ciphertext ‖ 16-byte tag.
 */
import crypto from 'node:crypto';
import { base64url } from './jwt.js';

const FORMAT_VERSION = 1;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

export interface KeyEncryptionKey {
  readonly id: string;
  readonly key: Buffer;
}

/**
 * The KEKs this process holds: `current` encrypts, `current` and `previous` decrypt.
 * No current KEK: signing keys are stored in clear (allowed only outside production, on
 * PostgreSQL; see config.ts).
 */
export interface KeyRing {
  readonly current: KeyEncryptionKey | undefined;
  readonly previous: KeyEncryptionKey | undefined;
}

export const CLEAR_KEY_RING: KeyRing = Object.freeze({ current: undefined, previous: undefined });

/** A short, stable name for a KEK; it reveals nothing usable about the key. */
export function kekIdOf(key: Buffer): string {
  return base64url(crypto.createHash('sha256').update('sentryagent-idp key-encryption-key id\0').update(key).digest()).slice(0, 16);
}

export function keyEncryptionKey(key: Buffer): KeyEncryptionKey {
  if (key.length !== 32) throw new Error('a key-encryption key is 32 bytes');
  return Object.freeze({ id: kekIdOf(key), key });
}

export function keyRingOf(current: Buffer | undefined, previous: Buffer | undefined): KeyRing {
  return Object.freeze({ current: current && keyEncryptionKey(current), previous: previous && keyEncryptionKey(previous) });
}

/** A signing key that this process cannot use: never says anything of the key material. */
export class SigningKeyUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyUnavailable';
  }
}

export function sealPrivateKey(kek: KeyEncryptionKey, kid: string, privateKeyDer: Buffer): Buffer {
  const nonce = crypto.randomBytes(NONCE_BYTES);
  const cipher = crypto.createCipheriv('aes-256-gcm', kek.key, nonce);
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(privateKeyDer), cipher.final()]);
  return Buffer.concat([Buffer.from([FORMAT_VERSION]), nonce, ciphertext, cipher.getAuthTag()]);
}

/** The KEK named by `kekId`, or a clear error naming the kid and the KEK id. */
export function kekFor(ring: KeyRing, kid: string, kekId: string): KeyEncryptionKey {
  const kek = [ring.current, ring.previous].find((candidate) => candidate?.id === kekId);
  if (!kek) {
    throw new SigningKeyUnavailable(
      `signing key ${kid} is encrypted under key-encryption key ${kekId}, which is neither KEY_ENCRYPTION_KEY ` +
        `(${ring.current?.id ?? 'unset'}) nor KEY_ENCRYPTION_KEY_PREVIOUS (${ring.previous?.id ?? 'unset'})`,
    );
  }
  return kek;
}

export function unsealPrivateKey(ring: KeyRing, kid: string, kekId: string, sealed: Buffer): Buffer {
  const kek = kekFor(ring, kid, kekId);
  const refusal = () =>
    new SigningKeyUnavailable(`signing key ${kid} does not decrypt under key-encryption key ${kekId}: its stored ciphertext was altered or belongs to another key`);
  if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== FORMAT_VERSION) throw refusal();
  const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
  const tag = sealed.subarray(sealed.length - TAG_BYTES);
  const decipher = crypto.createDecipheriv('aes-256-gcm', kek.key, nonce);
  decipher.setAAD(Buffer.from(kid, 'utf8'));
  decipher.setAuthTag(tag);
  try {
    return Buffer.concat([decipher.update(sealed.subarray(1 + NONCE_BYTES, sealed.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw refusal();
  }
}
