/**
 * Webhook signing secrets and signatures, as Standard Webhooks defines them
 * (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md):
 * a secret is `whsec_` + base64 of 32 random bytes; a signature is `v1,` + base64 of
 * HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` keyed with those bytes; during
 * a rotation's grace period `webhook-signature` carries one signature per secret, space
 * separated. At rest a secret is sealed with the key-encryption key (AES-256-GCM, the
 * endpoint id as associated data), or kept in clear where signing keys are (no KEK).
 */
import crypto from 'node:crypto';
import { kekFor, sealPrivateKey, unsealPrivateKey, type KeyRing } from '../keys/key-encryption.js';

const PREFIX = 'whsec_';
const SECRET_BYTES = 32;

export function newWebhookSecret(): string {
  return `${PREFIX}${crypto.randomBytes(SECRET_BYTES).toString('base64')}`;
}

/** The associated data that ties a sealed secret to its endpoint. */
const boundTo = (endpointId: string) => `webhook-endpoint:${endpointId}`;

export interface StoredSecret {
  readonly secret: Buffer;
  /** Null: stored in clear. */
  readonly kekId: string | null;
}

export function sealSecret(ring: KeyRing, endpointId: string, secret: string): StoredSecret {
  const bytes = Buffer.from(secret, 'utf8');
  if (!ring.current) return { secret: bytes, kekId: null };
  return { secret: sealPrivateKey(ring.current, boundTo(endpointId), bytes), kekId: ring.current.id };
}

export function openSecret(ring: KeyRing, endpointId: string, stored: StoredSecret): string {
  if (stored.kekId === null) return stored.secret.toString('utf8');
  kekFor(ring, boundTo(endpointId), stored.kekId);
  return unsealPrivateKey(ring, boundTo(endpointId), stored.kekId, stored.secret).toString('utf8');
}

/** The secret sealed under the ring's current KEK, unless it already is (answers undefined then). */
export function resealed(ring: KeyRing, endpointId: string, stored: StoredSecret): StoredSecret | undefined {
  if (!ring.current || stored.kekId === ring.current.id) return undefined;
  return sealSecret(ring, endpointId, openSecret(ring, endpointId, stored));
}

/** `v1,<signature>` for each secret, space separated. */
export function signatureHeader(secrets: readonly string[], messageId: string, timestampSeconds: number, body: string): string {
  return secrets
    .map((secret) => {
      const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
      return `v1,${crypto.createHmac('sha256', key).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')}`;
    })
    .join(' ');
}
