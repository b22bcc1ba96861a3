/**
 * Verifies a partner's token (the RFC 8693 subject token or the RFC 7523 assertion). The
 * header is checked before any key is looked up: an asymmetric algorithm, and nothing that
 * would let the token choose its own key. The unverified `iss` only selects the candidate
 * partners (several for a shared issuer); each verifies the token with its own keys, exact
 * issuer, its audiences (for RFC 7523: an audience naming this server, §3), `exp` (60 s
 * leeway), `iat` within `maxTokenAgeSeconds`, and its `requiredClaims`. Single use of `jti`
 * is the caller's job.
 */
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import type { IdTokenRejection } from '../github/verify-id-token.js';
import { allHold } from './conditions.js';
import type { Partner } from './federation-store.js';
import { PartnerKeysUnavailable, type PartnerKeys } from './partner-keys.js';
import { ALLOWED_ALGORITHMS } from './presets.js';

const MAX_TOKEN_LENGTH = 16_384;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
// RFC 7515 §4.1.2–4.1.6 and §4.1.11: a key chosen by the token, or an extension we do not know.
const REFUSED_HEADERS = ['jku', 'jwk', 'x5u', 'x5c', 'crit'] as const;
const LEEWAY_SECONDS = 60;

const BEFORE_SIGNATURE: ReadonlySet<IdTokenRejection> = new Set(['malformed', 'header', 'alg', 'unknown_kid', 'issuer_key', 'signature']);

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

export interface VerifiedSubjectToken {
  readonly claims: JWTPayload & { readonly iss: string };
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

/** The token's header and unverified issuer, or a rejection before any key is looked up. */
export function inspectSubjectToken(token: string): { alg: string; kid: string | undefined; iss: string } {
  if (token.length > MAX_TOKEN_LENGTH || !COMPACT_JWS.test(token)) reject('not a compact JWS', 'malformed');
  let header: Record<string, unknown>;
  let payload: JWTPayload;
  try {
    header = decodeProtectedHeader(token) as Record<string, unknown>;
    payload = decodeJwt(token);
  } catch {
    return reject('header or payload is not JSON', 'malformed');
  }
  const { alg, kid } = header;
  // RFC 8725 §3.1: asymmetric algorithms only; shuts out none and HS256 signed with a public key.
  if (typeof alg !== 'string' || !(ALLOWED_ALGORITHMS as readonly string[]).includes(alg)) reject(`alg ${JSON.stringify(alg)} is not allowed`, 'alg');
  const carried = REFUSED_HEADERS.filter((name) => name in header);
  if (carried.length > 0) reject(`header carries ${carried.join(', ')}`, 'header');
  if (kid !== undefined && typeof kid !== 'string') reject('kid is not a string', 'header');
  if (typeof payload.iss !== 'string' || payload.iss === '') reject('no iss', 'malformed');
  return { alg: alg as string, kid: kid as string | undefined, iss: payload.iss as string };
}

/**
 * The claims and the partners that accept the token. Throws SubjectTokenRejected when none
 * does: the first candidate's reason (a signed token's is precise; an unsigned one's only
 * says why the signature was not accepted).
 */
export async function verifySubjectToken(token: string, candidates: readonly Partner[], options: VerifySubjectTokenOptions): Promise<VerifiedSubjectToken> {
  const { alg, kid, iss } = inspectSubjectToken(token);
  const forIssuer = candidates.filter((partner) => partner.issuer === iss);
  // Before any signature: the issuer is only what the token says.
  if (forIssuer.length === 0) reject('no partner has this issuer', 'iss', true);
  let claims: (JWTPayload & { iss: string }) | undefined;
  const accepted: Partner[] = [];
  let firstRejection: SubjectTokenRejected | undefined;
  // One partner's keys out of reach does not stop another partner of the issuer from accepting.
  let unavailable: PartnerKeysUnavailable | undefined;
  for (const partner of forIssuer) {
    try {
      if (!partner.algorithms.includes(alg)) reject(`alg ${alg} is not one of the partner's`, 'alg');
      const keySet = await options.keys.keySetFor(partner, kid);
      const { payload } = await jwtVerify(token, localKeySet(keySet), {
        issuer: partner.issuer,
        audience: options.serverAudiences ? [...options.serverAudiences] : [...partner.audiences],
        algorithms: [...partner.algorithms],
        clockTolerance: LEEWAY_SECONDS,
        maxTokenAge: partner.maxTokenAgeSeconds,
        requiredClaims: ['exp', 'iat'],
        currentDate: new Date(options.nowMs),
      });
      if (!allHold(partner.requiredClaims, payload as Record<string, unknown>)) reject(`the partner's required claims do not hold`, 'claims');
      claims = payload as JWTPayload & { iss: string };
      accepted.push(partner);
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) unavailable ??= error;
      else firstRejection ??= asRejection(error);
    }
  }
  if (!claims || accepted.length === 0) throw unavailable ?? firstRejection ?? new SubjectTokenRejected('no partner accepts the token', 'claims');
  return { claims, partners: accepted };
}

// A key set's keys are imported once (an RSA import costs more than a verification), for as long as the set is cached.
const localKeySets = new WeakMap<object, ReturnType<typeof createLocalJWKSet>>();
function localKeySet(keySet: Parameters<typeof createLocalJWKSet>[0]): ReturnType<typeof createLocalJWKSet> {
  let local = localKeySets.get(keySet);
  if (!local) {
    local = createLocalJWKSet(keySet);
    localKeySets.set(keySet, local);
  }
  return local;
}

/** jose's errors as this module's reasons; anything else (a key that cannot be fetched) is thrown on. */
function asRejection(error: unknown): SubjectTokenRejected {
  if (error instanceof SubjectTokenRejected) return error;
  if (error instanceof errors.JWTExpired) return new SubjectTokenRejected('expired', 'expired');
  if (error instanceof errors.JWTClaimValidationFailed) {
    const code: IdTokenRejection = error.claim === 'aud' ? 'aud' : error.claim === 'iss' ? 'iss' : error.claim === 'nbf' ? 'not_yet_valid' : 'claims';
    return new SubjectTokenRejected(`claim ${error.claim} ${error.reason}`, code);
  }
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys) return new SubjectTokenRejected('no single key of the partner matches', 'unknown_kid');
  if (error instanceof errors.JWSSignatureVerificationFailed) return new SubjectTokenRejected('signature verification failed', 'signature');
  if (error instanceof errors.JOSEAlgNotAllowed) return new SubjectTokenRejected('alg not allowed', 'alg');
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return new SubjectTokenRejected('malformed', 'malformed');
  // jose refuses an RSA key under 2048 bits with a TypeError.
  if (error instanceof TypeError) return new SubjectTokenRejected('the partner key is not usable for this algorithm', 'issuer_key');
  throw error;
}
