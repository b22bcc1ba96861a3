/**
 * Client secrets: 256 random bits behind an `sk_live_` prefix, shown once, stored only
 * as SHA-256. A fast hash is right for secrets of this entropy (a slow password hash
 * would cap issuance at tens per second and add nothing against brute force), and the
 * comparison is constant-time.
 */
import crypto from 'node:crypto';

export const SECRET_PREFIX = 'sk_live_';

export function generateClientSecret(): string {
  return SECRET_PREFIX + crypto.randomBytes(32).toString('base64url');
}

export function hashClientSecret(secret: string): Buffer {
  return crypto.createHash('sha256').update(secret, 'utf8').digest();
}

/** What client authentication knows of an agent: its status, scopes and live credential hashes. */
export interface ClientForAuthentication {
  readonly agentId: string;
  readonly status: string;
  readonly orgId: string;
  readonly orgStatus: string;
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
