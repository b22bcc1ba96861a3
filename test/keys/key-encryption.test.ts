import crypto from 'node:crypto';
import { describe, expect, it } from '@jest/globals';
import { keyRingOf, kekIdOf, sealPrivateKey, SigningKeyUnavailable, unsealPrivateKey } from '../../server/src/keys/key-encryption.js';

const kekA = crypto.randomBytes(32);
const kekB = crypto.randomBytes(32);
const privateDer = crypto.generateKeyPairSync('ed25519').privateKey.export({ format: 'der', type: 'pkcs8' });

function failureOf(run: () => unknown): Error {
  try {
    run();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure');
}

describe('sealing a signing key under a key-encryption key', () => {
  const ring = keyRingOf(kekA, undefined);

  it('round-trips, and the sealed form does not contain the key', () => {
    const sealed = sealPrivateKey(ring.current!, 'kid-1', privateDer);
    expect(sealed.includes(privateDer)).toBe(false);
    expect(sealed.includes(privateDer.subarray(-32))).toBe(false); // the raw Ed25519 seed
    expect(unsealPrivateKey(ring, 'kid-1', kekIdOf(kekA), sealed)).toEqual(privateDer);
    // A fresh nonce each time.
    expect(sealPrivateKey(ring.current!, 'kid-1', privateDer).equals(sealed)).toBe(false);
  });

  it('binds the ciphertext to its kid: moved to another kid it does not decrypt', () => {
    const sealed = sealPrivateKey(ring.current!, 'kid-1', privateDer);
    const failure = failureOf(() => unsealPrivateKey(ring, 'kid-2', kekIdOf(kekA), sealed));
    expect(failure).toBeInstanceOf(SigningKeyUnavailable);
    expect(failure.message).toBe(
      `signing key kid-2 does not decrypt under key-encryption key ${kekIdOf(kekA)}: its stored ciphertext was altered or belongs to another key`,
    );
  });

  it('refuses an altered ciphertext', () => {
    const sealed = sealPrivateKey(ring.current!, 'kid-1', privateDer);
    sealed[20] ^= 1;
    expect(failureOf(() => unsealPrivateKey(ring, 'kid-1', kekIdOf(kekA), sealed))).toBeInstanceOf(SigningKeyUnavailable);
  });

  it('names the kid and the KEK id when the KEK is not held, and nothing of either key', () => {
    const sealed = sealPrivateKey(keyRingOf(kekB, undefined).current!, 'kid-1', privateDer);
    const failure = failureOf(() => unsealPrivateKey(ring, 'kid-1', kekIdOf(kekB), sealed));
    expect(failure).toBeInstanceOf(SigningKeyUnavailable);
    expect(failure.message).toBe(
      `signing key kid-1 is encrypted under key-encryption key ${kekIdOf(kekB)}, which is neither KEY_ENCRYPTION_KEY (${kekIdOf(kekA)}) nor KEY_ENCRYPTION_KEY_PREVIOUS (unset)`,
    );
    for (const material of [kekA, kekB]) {
      expect(failure.message).not.toContain(material.toString('base64'));
      expect(failure.message).not.toContain(material.toString('base64url'));
    }
  });

  it('decrypts with the previous KEK during a KEK rotation', () => {
    const sealed = sealPrivateKey(keyRingOf(kekA, undefined).current!, 'kid-1', privateDer);
    expect(unsealPrivateKey(keyRingOf(kekB, kekA), 'kid-1', kekIdOf(kekA), sealed)).toEqual(privateDer);
  });

  it('gives each KEK a short, stable id that is not the key', () => {
    expect(kekIdOf(kekA)).toBe(kekIdOf(Buffer.from(kekA)));
    expect(kekIdOf(kekA)).not.toBe(kekIdOf(kekB));
    expect(kekIdOf(kekA)).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(kekA.toString('base64url')).not.toContain(kekIdOf(kekA));
  });
});
