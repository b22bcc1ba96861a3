/**
 * Verifies a GitHub Actions OIDC ID token. The header is checked before any key is looked
 * up: RS256 only, a kid, and nothing that would let the token choose its own key. The key
 * then comes from the configured issuer's JWKS, never from the token's `iss`. Single use of
 * `jti` is the database's job, not this module's.
 * Claims: https://docs.github.com/en/actions/reference/security/oidc#oidc-token-claims
 */
import crypto, { KeyObject, type webcrypto } from 'node:crypto';
import { z } from 'zod';
import { isStorableText } from '../http/validation.js';
import type { GitHubJwks } from './jwks-cache.js';

type CryptoKey = webcrypto.CryptoKey;

/** GitHub sends every id (repository_id, run_id, …) as a string. */
export interface GitHubClaims {
  readonly iss: string;
  /** Normalized: the one audience the token was checked against. */
  readonly aud: string;
  /** Never parsed for decisions: GitHub has several formats, some carrying ids. */
  readonly sub: string;
  readonly jti: string;
  readonly iat: number;
  readonly nbf: number;
  readonly exp: number;
  readonly repository: string;
  readonly repository_id?: string;
  readonly repository_owner?: string;
  readonly repository_owner_id?: string;
  readonly ref?: string;
  readonly ref_type?: string;
  readonly sha?: string;
  readonly environment?: string;
  readonly workflow?: string;
  readonly workflow_ref?: string;
  readonly job_workflow_ref?: string;
  readonly event_name?: string;
  readonly run_id?: string;
  readonly run_number?: string;
  readonly run_attempt?: string;
  readonly actor?: string;
  readonly actor_id?: string;
  readonly [claim: string]: unknown;
}

/** The reason is for the audit log; the HTTP answer stays a generic `invalid_grant`. */
/**
 * Why a token was refused, as a fixed set (a metric label, an audit summary key): the
 * first group before its signature is verified, the second after.
 */
export type IdTokenRejection =
  | 'malformed'
  | 'header'
  | 'alg'
  | 'unknown_kid'
  | 'issuer_key'
  | 'signature'
  | 'claims'
  | 'iss'
  | 'aud'
  | 'expired'
  | 'not_yet_valid';

const BEFORE_SIGNATURE: ReadonlySet<IdTokenRejection> = new Set(['malformed', 'header', 'alg', 'unknown_kid', 'issuer_key', 'signature']);

export class IdTokenRejectedError extends Error {
  constructor(
    /** Precise, for the audit log of a signed token; may quote what the token carries. */
    readonly reason: string,
    readonly code: IdTokenRejection,
  ) {
    super(`GitHub ID token rejected: ${reason}`);
    this.name = 'IdTokenRejectedError';
  }

  /** Refused before its signature was verified: anyone could have sent it, naming anything. */
  get isUnverified(): boolean {
    return BEFORE_SIGNATURE.has(this.code);
  }
}

export interface VerifyGitHubIdTokenOptions {
  readonly issuer: string;
  readonly audience: string;
  readonly jwks: GitHubJwks;
  readonly now?: Date;
  readonly leewaySeconds?: number;
}

// RFC 7515 §4.1.2–4.1.6: a key or key URL chosen by whoever wrote the token.
const KEY_CARRYING_HEADERS = ['jku', 'jwk', 'x5u', 'x5c'] as const;
// The signature may be empty here so that an unsigned token is refused for its alg, by name.
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_TOKEN_LENGTH = 16_384;

const required = (expected: string) => ({
  error: (issue: { input: unknown }) => (issue.input === undefined ? 'is required' : `must be ${expected}`),
});
// Claims are stored (audit, used jtis) and compared in SQL: text PostgreSQL cannot hold is refused like any malformed claim.
const storable = z.string(required('a string')).refine(isStorableText, 'contains NUL or an unpaired surrogate');
const text = storable.optional();
const nonEmptyText = storable.min(1, 'is empty');
// Pinned into trust policies on first use, where they must read as the decimal ids GitHub sends.
const decimalId = storable.regex(/^[1-9]\d{0,19}$/, 'is not a decimal id').optional();
const numericDate = z.number(required('a NumericDate'));
const claimsSchema = z.looseObject({
  iss: z.string(required('a string')),
  aud: z.union([z.string(), z.array(z.string())], required('a string or an array of strings')),
  sub: nonEmptyText,
  jti: nonEmptyText.max(256, 'is longer than 256 characters'),
  iat: numericDate,
  nbf: numericDate,
  exp: numericDate,
  repository: nonEmptyText,
  repository_id: decimalId,
  repository_owner_id: decimalId,
  ...Object.fromEntries(
    [
      'repository_owner', 'ref', 'ref_type', 'sha', 'environment',
      'workflow', 'workflow_ref', 'job_workflow_ref', 'event_name', 'run_id', 'run_number', 'run_attempt',
      'actor', 'actor_id',
    ].map((name) => [name, text]),
  ),
});

export async function verifyGitHubIdToken(token: string, options: VerifyGitHubIdTokenOptions): Promise<GitHubClaims> {
  const { kid } = checkHeader(token);
  const key = await options.jwks.getKey(kid);
  if (key === undefined) reject(`kid ${quote(kid)} is not in the issuer's JWKS`, 'unknown_kid');
  const signatureAt = token.lastIndexOf('.');
  // RS256 is RSASSA-PKCS1-v1_5 with SHA-256 (RFC 7518 §3.3), checked synchronously by
  // node:crypto: WebCrypto's asynchronous job costs more than the check itself.
  const isValid = crypto.verify(
    'sha256',
    Buffer.from(token.slice(0, signatureAt), 'latin1'),
    { key: verificationKey(key), padding: crypto.constants.RSA_PKCS1_PADDING },
    Buffer.from(token.slice(signatureAt + 1), 'base64url'),
  );
  if (!isValid) reject('signature verification failed', 'signature');
  const payload = token.slice(token.indexOf('.') + 1, signatureAt);
  return checkClaims(parseJsonObject(Buffer.from(payload, 'base64url').toString('utf8'), 'payload', 'claims'), options);
}

const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/** The node:crypto form of an issuer key, converted once; only RSA keys of 2048 bits or more verify RS256. */
function verificationKey(key: CryptoKey): KeyObject {
  let keyObject = keyObjects.get(key);
  if (keyObject === undefined) {
    keyObject = KeyObject.from(key);
    keyObjects.set(key, keyObject);
  }
  const modulusLength = keyObject.asymmetricKeyDetails?.modulusLength ?? 0;
  if (keyObject.type !== 'public' || keyObject.asymmetricKeyType !== 'rsa' || modulusLength < 2048) {
    reject('the issuer key is not an RSA public key of at least 2048 bits', 'issuer_key');
  }
  return keyObject;
}

function checkHeader(token: string): { kid: string } {
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) reject('not a compact JWS', 'malformed');
  const header = parseJsonObject(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'), 'header', 'malformed');
  // RFC 8725 §3.1: accept exactly the algorithm the issuer uses; this shuts out "none" and HS256-with-the-public-key.
  if (header.alg !== 'RS256') reject(`alg ${quote(header.alg)} is not RS256`, 'alg');
  const carried = KEY_CARRYING_HEADERS.filter((name) => name in header);
  if (carried.length > 0) reject(`header carries ${carried.join(', ')}`, 'header');
  // RFC 7515 §4.1.11: GitHub sets no crit; refusing it also refuses b64=false (RFC 7797).
  if ('crit' in header) reject('header carries crit', 'header');
  if (typeof header.kid !== 'string' || header.kid === '') reject('header has no kid', 'header');
  return { kid: header.kid as string };
}

function checkClaims(payload: Record<string, unknown>, options: VerifyGitHubIdTokenOptions): GitHubClaims {
  const parsed = claimsSchema.safeParse(payload);
  if (!parsed.success) {
    const [issue] = parsed.error.issues;
    reject(`claim ${issue.path.map(String).join('.')} ${issue.message}`, 'claims');
  }
  const claims = parsed.data as unknown as GitHubClaims & { aud: string | string[] };
  if (claims.iss !== options.issuer) reject(`iss ${quote(claims.iss)} is not the configured issuer`, 'iss');
  // A token for several audiences could be replayed by any of them (OIDC Core §3.1.3.7 step 3).
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
  if (audiences.length !== 1 || audiences[0] !== options.audience) {
    reject(`aud ${quote(claims.aud)} is not exactly the configured audience`, 'aud');
  }
  const leeway = options.leewaySeconds ?? 60;
  const now = (options.now ?? new Date()).getTime() / 1000;
  // RFC 7519 §4.1.4–4.1.6. GitHub back-dates nbf, so an old nbf is fine; only a future one is not.
  if (claims.exp <= now - leeway) reject(`expired at ${claims.exp} (now ${Math.floor(now)})`, 'expired');
  if (claims.nbf > now + leeway) reject(`not valid before ${claims.nbf} (now ${Math.floor(now)})`, 'not_yet_valid');
  if (claims.iat > now + leeway) reject(`issued in the future at ${claims.iat} (now ${Math.floor(now)})`, 'not_yet_valid');
  if (claims.exp <= claims.iat) reject(`exp ${claims.exp} is not after iat ${claims.iat}`, 'claims');
  return { ...claims, aud: options.audience };
}

function parseJsonObject(json: string, part: string, code: IdTokenRejection): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    reject(`${part} is not JSON`, code);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) reject(`${part} is not a JSON object`, code);
  return value as Record<string, unknown>;
}

function reject(reason: string, code: IdTokenRejection): never {
  throw new IdTokenRejectedError(reason, code);
}

function quote(value: unknown): string {
  const json = JSON.stringify(value) ?? String(value);
  return json.length > 120 ? `${json.slice(0, 120)}…` : json;
}
