/**
 * Compact JWS for the tokens we issue, on node:crypto directly: signing is the cost
 * floor of every token endpoint, so nothing sits between the request and the signature.
 * Verification is strict: the header's alg must equal the alg of the key named by kid.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { SigningAlg } from '../config.js';

export interface JwtClaims {
  readonly iss: string;
  readonly sub: string;
  readonly client_id: string;
  readonly scope: string;
  readonly jti: string;
  readonly iat: number;
  readonly exp: number;
  readonly [claim: string]: unknown;
}

export function base64url(input: Buffer | string): string {
  return Buffer.from(input).toString('base64url');
}

function signatureOptions(alg: SigningAlg, key: KeyObject): crypto.SignKeyObjectInput | KeyObject {
  // JWS (RFC 7518 §3.4) wants ECDSA signatures as r||s, not DER.
  return alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key;
}

function digestOf(alg: SigningAlg): string | null {
  return alg === 'EdDSA' ? null : 'sha256';
}

export function signJwt(alg: SigningAlg, encodedHeader: string, privateKey: KeyObject, claims: JwtClaims): string {
  const signingInput = `${encodedHeader}.${base64url(JSON.stringify(claims))}`;
  const signature = crypto.sign(digestOf(alg), Buffer.from(signingInput), signatureOptions(alg, privateKey));
  return `${signingInput}.${signature.toString('base64url')}`;
}

export function encodeHeader(alg: SigningAlg, kid: string, typ = 'at+jwt'): string {
  return base64url(JSON.stringify({ alg, typ, kid }));
}

/** A compact JWS over any JSON payload (a signed document that is not an access token). */
export function signJws(alg: SigningAlg, encodedHeader: string, privateKey: KeyObject, payload: Record<string, unknown>): string {
  const signingInput = `${encodedHeader}.${base64url(JSON.stringify(payload))}`;
  const signature = crypto.sign(digestOf(alg), Buffer.from(signingInput), signatureOptions(alg, privateKey));
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** The header of a compact JWS, unverified (to choose the key), or undefined. */
export function peekHeader(token: string): { alg?: unknown; kid?: unknown; typ?: unknown; crit?: unknown } | undefined {
  if (token.length > 8192 || !COMPACT_JWS.test(token)) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, token.indexOf('.')), 'base64url').toString('utf8'));
    return typeof header === 'object' && header !== null && !Array.isArray(header) ? header : undefined;
  } catch {
    return undefined;
  }
}

export interface VerificationKey {
  readonly alg: SigningAlg;
  readonly publicKey: KeyObject;
}

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

/** Returns the claims of a well-signed token of ours, or undefined for anything else. */
export function verifyJwt(
  token: string,
  keyOf: (kid: string) => VerificationKey | undefined,
  onUnknownKid: (kid: string) => void = () => undefined,
): JwtClaims | undefined {
  if (token.length > 8192 || !COMPACT_JWS.test(token)) return undefined;
  const [encodedHeader, encodedPayload, encodedSignature] = token.split('.');
  let header: { alg?: unknown; kid?: unknown; crit?: unknown };
  let claims: JwtClaims;
  try {
    header = JSON.parse(Buffer.from(encodedHeader, 'base64url').toString('utf8'));
    claims = JSON.parse(Buffer.from(encodedPayload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof header !== 'object' || header === null || typeof header.kid !== 'string' || header.crit !== undefined) {
    return undefined;
  }
  const key = keyOf(header.kid);
  if (!key) {
    onUnknownKid(header.kid);
    return undefined;
  }
  if (header.alg !== key.alg) return undefined;
  const isValid = crypto.verify(
    digestOf(key.alg),
    Buffer.from(`${encodedHeader}.${encodedPayload}`),
    key.alg === 'ES256' ? { key: key.publicKey, dsaEncoding: 'ieee-p1363' } : key.publicKey,
    Buffer.from(encodedSignature, 'base64url'),
  );
  if (!isValid || typeof claims !== 'object' || claims === null) return undefined;
  return claims;
}
