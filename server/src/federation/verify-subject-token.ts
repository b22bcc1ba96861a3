/**
 * Verifies a partner's token (the RFC 8693 subject token or the RFC 7523 assertion). The
 * header is checked before any key is looked up: an asymmetric algorithm, and nothing that
 * would let the token choose its own key. The unverified `iss` only selects the candidate
 * partners (several for a shared issuer); each verifies the token with its own keys, exact
 * issuer, its audiences (for RFC 7523: an audience naming this server, §3), `exp` (60 s
 * leeway), `iat` within `maxTokenAgeSeconds`, and its `requiredClaims`. Single use of `jti`
 * is the caller's job.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { IdTokenRejection } from '../github/verify-id-token.js';
import { isStorableText } from '../http/validation.js';
import { allHold } from './conditions.js';
import type { Partner } from './federation-store.js';
import { PartnerKeysUnavailable, type PartnerKeys, type VerificationKey } from './partner-keys.js';
import { ALLOWED_ALGORITHMS } from './presets.js';

const MAX_TOKEN_LENGTH = 16_384;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// RFC 7515 §4.1.2–4.1.6 and §4.1.11: a key chosen by the token, or an extension we do not know.
const REFUSED_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'crit'] as const;
const LEEWAY_SECONDS = 60;
/** A token without a kid is tried against at most this many of the partner's keys. */
const MAX_KEYS_TRIED = 4;

const BEFORE_SIGNATURE: ReadonlySet<IdTokenRejection> = new Set(['malformed', 'header', 'alg', 'unknown_kid', 'issuer_key', 'signature']);

/**
 * The last second at which a verified token can still be accepted: before its `exp` (with
 * the leeway) and within its partner's `maxTokenAgeSeconds` of its `iat`. A single-use jti is
 * remembered until then, whatever `exp` the partner wrote.
 */
export function acceptedUntil(claims: SubjectClaims, partner: Pick<Partner, 'maxTokenAgeSeconds'>): number {
  return Math.min((claims.exp as number) + LEEWAY_SECONDS, (claims.iat as number) + partner.maxTokenAgeSeconds + LEEWAY_SECONDS);
}

export class SubjectTokenRejected extends Error {
  constructor(
    /** Precise, for the audit log of a signed token only. */
    readonly reason: string,
    readonly code: IdTokenRejection,
    /** Refused before its signature was verified: anyone could have sent it, naming anything. */
    readonly isUnverified = BEFORE_SIGNATURE.has(code),
  ) {
    super(`subject token rejected: ${reason}`);
    this.name = 'SubjectTokenRejected';
  }
}

/** A JWT's claims (RFC 7519 §4), as the token carries them. */
export type SubjectClaims = Record<string, unknown> & { readonly iss: string };

export interface VerifiedSubjectToken {
  readonly claims: SubjectClaims;
  /** The candidate partners whose keys, audiences, age limit and required claims the token meets. */
  readonly partners: Partner[];
}

export interface VerifySubjectTokenOptions {
  readonly keys: PartnerKeys;
  readonly nowMs: number;
  /** RFC 7523 §3: the audiences that identify this server; set for the JWT bearer grant, instead of the partner's. */
  readonly serverAudiences?: readonly string[];
}

const reject = (reason: string, code: IdTokenRejection, isUnverified?: boolean): never => {
  throw new SubjectTokenRejected(reason, code, isUnverified);
};

/** A compact JWS taken apart: nothing in it is trusted yet. */
export interface InspectedToken {
  readonly alg: string;
  readonly kid: string | undefined;
  /** Unverified: selects the candidate partners only. */
  readonly iss: string;
  readonly claims: SubjectClaims;
  readonly signingInput: Buffer;
  readonly signature: Buffer;
}

/** The token's header and unverified claims, or a rejection before any key is looked up. */
export function inspectSubjectToken(token: string): InspectedToken {
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) reject('not a compact JWS', 'malformed');
  const [headerPart, payloadPart, signaturePart] = token.split('.') as [string, string, string];
  const header = jsonObject(headerPart, 'header');
  const claims = jsonObject(payloadPart, 'payload');
  const { alg, kid } = header;
  // RFC 8725 §3.1: asymmetric algorithms only; shuts out none and HS256 signed with a public key.
  if (typeof alg !== 'string' || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) reject(`alg ${JSON.stringify(alg)} is not allowed`, 'alg');
  const carried = REFUSED_HEADERS.filter((name) => name in header);
  if (carried.length > 0) reject(`header carries ${carried.join(', ')}`, 'header');
  if (kid !== undefined && typeof kid !== 'string') reject('kid is not a string', 'header');
  if (typeof claims.iss !== 'string' || claims.iss === '') reject('no iss', 'malformed');
  return {
    alg: alg as string,
    kid: kid as string | undefined,
    iss: claims.iss as string,
    claims: claims as SubjectClaims,
    signingInput: Buffer.from(token.slice(0, headerPart.length + 1 + payloadPart.length), 'latin1'),
    signature: Buffer.from(signaturePart, 'base64url'),
  };
}

function jsonObject(part: string, name: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(part, 'base64url').toString('utf8'));
  } catch {
    reject(`${name} is not JSON`, 'malformed');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) reject(`${name} is not a JSON object`, 'malformed');
  return value as Record<string, unknown>;
}

/**
 * The claims and the partners that accept the token. Throws SubjectTokenRejected when none
 * does: the first candidate's reason (a signed token's is precise; an unsigned one's only
 * says why the signature was not accepted). Partners sharing a key (a shared issuer's)
 * check the signature once.
 */
export async function verifySubjectToken(token: string | InspectedToken, candidates: readonly Partner[], options: VerifySubjectTokenOptions): Promise<VerifiedSubjectToken> {
  const inspected = typeof token === 'string' ? inspectSubjectToken(token) : token;
  const forIssuer = candidates.filter((partner) => partner.issuer === inspected.iss);
  // Before any signature: the issuer is only what the token says.
  if (forIssuer.length === 0) reject('no partner has this issuer', 'iss', true);
  const verdicts = new Map<KeyObject, boolean>();
  const accepted: Partner[] = [];
  let firstRejection: SubjectTokenRejected | undefined;
  // One partner's keys out of reach does not stop another partner of the issuer from accepting.
  let unavailable: PartnerKeysUnavailable | undefined;
  for (const partner of forIssuer) {
    try {
      if (!partner.algorithms.includes(inspected.alg)) reject(`alg ${inspected.alg} is not one of the partner's`, 'alg');
      checkSignature(inspected, await options.keys.keysFor(partner, inspected.kid), verdicts);
      checkClaims(inspected.claims, partner, options);
      accepted.push(partner);
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) unavailable ??= error;
      else if (error instanceof SubjectTokenRejected) firstRejection ??= error;
      else throw error;
    }
  }
  if (accepted.length === 0) throw unavailable ?? firstRejection ?? new SubjectTokenRejected('no partner accepts the token', 'claims');
  return { claims: inspected.claims, partners: accepted };
}

/** How node:crypto checks each algorithm (RFC 7518 §3.3–3.5, RFC 8037 §3.1), and which keys may. */
const SCHEMES: Record<string, { readonly digest: string | null; readonly keyType: readonly string[]; readonly curve?: string; readonly options?: Partial<crypto.VerifyKeyObjectInput> }> = {
  RS256: { digest: 'sha256', keyType: ['rsa'], options: { padding: crypto.constants.RSA_PKCS1_PADDING } },
  RS384: { digest: 'sha384', keyType: ['rsa'], options: { padding: crypto.constants.RSA_PKCS1_PADDING } },
  RS512: { digest: 'sha512', keyType: ['rsa'], options: { padding: crypto.constants.RSA_PKCS1_PADDING } },
  PS256: { digest: 'sha256', keyType: ['rsa', 'rsa-pss'], options: { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 } },
  PS384: { digest: 'sha384', keyType: ['rsa', 'rsa-pss'], options: { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 48 } },
  PS512: { digest: 'sha512', keyType: ['rsa', 'rsa-pss'], options: { padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 64 } },
  ES256: { digest: 'sha256', keyType: ['ec'], curve: 'prime256v1', options: { dsaEncoding: 'ieee-p1363' } },
  ES384: { digest: 'sha384', keyType: ['ec'], curve: 'secp384r1', options: { dsaEncoding: 'ieee-p1363' } },
  EdDSA: { digest: null, keyType: ['ed25519', 'ed448'] },
};

/** Keys of the right kind for the algorithm (RSA of 2048 bits or more, the algorithm's curve) and, when the token names one, the kid. */
function keysFitting(inspected: InspectedToken, keys: readonly VerificationKey[]): VerificationKey[] {
  const scheme = SCHEMES[inspected.alg];
  if (!scheme) return [];
  const fitting = keys.filter(({ key, alg, kid }) => {
    if (inspected.kid !== undefined && kid !== inspected.kid) return false;
    if (alg !== undefined && alg !== inspected.alg) return false;
    return scheme.keyType.includes(key.asymmetricKeyType ?? '');
  });
  const usable = fitting.filter(({ key }) => {
    const details = key.asymmetricKeyDetails ?? {};
    if (key.asymmetricKeyType?.startsWith('rsa')) return (details.modulusLength ?? 0) >= 2048;
    return scheme.curve === undefined || details.namedCurve === scheme.curve;
  });
  if (fitting.length > 0 && usable.length === 0) reject('the partner key is not usable for this algorithm', 'issuer_key');
  return usable;
}

function checkSignature(inspected: InspectedToken, keys: readonly VerificationKey[], verdicts: Map<KeyObject, boolean>): void {
  const fitting = keysFitting(inspected, keys);
  if (fitting.length === 0) reject('no key of the partner matches', 'unknown_kid');
  const scheme = SCHEMES[inspected.alg] as (typeof SCHEMES)[string];
  for (const { key } of fitting.slice(0, MAX_KEYS_TRIED)) {
    let isValid = verdicts.get(key);
    if (isValid === undefined) {
      // Synchronous: WebCrypto's asynchronous job costs more than the check itself.
      isValid = verifies(scheme, key, inspected);
      verdicts.set(key, isValid);
    }
    if (isValid) return;
  }
  reject('signature verification failed', 'signature');
}

function verifies(scheme: (typeof SCHEMES)[string], key: KeyObject, inspected: InspectedToken): boolean {
  try {
    return crypto.verify(scheme.digest, inspected.signingInput, { key, ...scheme.options }, inspected.signature);
  } catch {
    return false; // a signature node:crypto cannot even parse
  }
}

const isNumericDate = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** RFC 7519 §4.1 as the partner configures it, then its required claims. */
function checkClaims(claims: SubjectClaims, partner: Partner, options: VerifySubjectTokenOptions): void {
  if (claims.iss !== partner.issuer) reject('claim iss unexpected value', 'iss');
  const audiences = options.serverAudiences ?? partner.audiences;
  const aud = typeof claims.aud === 'string' ? [claims.aud] : Array.isArray(claims.aud) ? claims.aud : undefined;
  if (aud === undefined) reject('claim aud missing', 'aud');
  if (!aud?.some((value) => typeof value === 'string' && audiences.includes(value))) reject('claim aud unexpected value', 'aud');
  const now = Math.floor(options.nowMs / 1000);
  const { exp, iat, nbf } = claims;
  if (!isNumericDate(exp) || !isNumericDate(iat)) reject('claim exp or iat missing or not a NumericDate', 'claims');
  if ((exp as number) <= now - LEEWAY_SECONDS) reject('expired', 'expired');
  if (nbf !== undefined && (!isNumericDate(nbf) || nbf > now + LEEWAY_SECONDS)) reject('claim nbf not yet valid', 'not_yet_valid');
  if ((iat as number) > now + LEEWAY_SECONDS) reject('claim iat in the future', 'not_yet_valid');
  if (now - (iat as number) - LEEWAY_SECONDS > partner.maxTokenAgeSeconds) reject('claim iat too far in the past', 'claims');
  // Both are stored (the audit log, spent jtis): text PostgreSQL cannot hold is refused like any malformed claim.
  for (const name of ['sub', 'jti'] as const) {
    const value = claims[name];
    if (value !== undefined && (typeof value !== 'string' || !isStorableText(value))) reject(`claim ${name} is not storable text`, 'claims');
  }
  if (!allHold(partner.requiredClaims, claims)) reject(`the partner's required claims do not hold`, 'claims');
}
