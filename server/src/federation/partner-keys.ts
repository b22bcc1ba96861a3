/**
 * A partner's verification keys: its inline `keys`, its `jwksUri`, or its issuer's OIDC
 * discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`). Fetched
 * documents go through the egress guard (the app's `fetchJson`), never to a URL a token
 * names. Keys are imported once into node:crypto key objects (an RSA import costs more than
 * a verification) and cached by where they come from, so the partners of a shared issuer
 * share one fetch and one import. A token whose kid is not in the cached set refetches at
 * most once per `refetchIntervalMs` per source; a failed fetch is not retried within that
 * interval either (the keys fetched before, if any, keep answering); concurrent lookups
 * share one fetch. So neither made-up kids nor a partner that is down become a flood.
 */
import crypto, { type KeyObject } from 'node:crypto';
import type { Partner, PublicJwk } from './federation-store.js';

export type FetchJson = (url: string) => Promise<unknown>;

export class PartnerKeysUnavailable extends Error {
  constructor(readonly partnerId: string, reason: string) {
    super(`keys of federation partner ${partnerId} unavailable: ${reason}`);
    this.name = 'PartnerKeysUnavailable';
  }
}

/** A public key of a partner, as its JWK describes it. */
export interface VerificationKey {
  readonly kid: string | undefined;
  /** The JWK's `alg`, when it names one: the key verifies that algorithm only. */
  readonly alg: string | undefined;
  readonly key: KeyObject;
}

interface Fetched {
  readonly keys: readonly VerificationKey[];
  readonly fetchedAtMs: number;
}

export interface PartnerKeysOptions {
  readonly fetchJson: FetchJson;
  readonly now: () => number;
  readonly ttlMs?: number;
  readonly refetchIntervalMs?: number;
}

const isKeySet = (value: unknown): value is { keys: unknown[] } =>
  typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys);

/** The signing keys of a JWK Set as key objects; a key that is private, not for signatures or not importable is left out. */
export function importKeySet(keySet: { readonly keys: readonly unknown[] }): VerificationKey[] {
  const imported: VerificationKey[] = [];
  for (const jwk of keySet.keys) {
    if (typeof jwk !== 'object' || jwk === null) continue;
    const { kid, alg, use, d } = jwk as PublicJwk;
    if ((use !== undefined && use !== 'sig') || d !== undefined) continue;
    try {
      const key = crypto.createPublicKey({ key: jwk as crypto.JsonWebKey, format: 'jwk' });
      imported.push({ kid: typeof kid === 'string' ? kid : undefined, alg: typeof alg === 'string' ? alg : undefined, key });
    } catch {
      // Not a public key node:crypto can read (an unknown kty or curve): it verifies nothing.
    }
  }
  return imported;
}

export class PartnerKeys {
  /** Fetched keys by source (the jwksUri, or the issuer whose discovery names it). */
  readonly #fetched = new Map<string, Fetched>();
  /** When each source was last refetched for an unknown kid. */
  readonly #lastRefetchMs = new Map<string, number>();
  /** Each source's last failed fetch, until one succeeds. */
  readonly #failures = new Map<string, { readonly atMs: number; readonly reason: string }>();
  readonly #inFlight = new Map<string, Promise<readonly VerificationKey[]>>();
  /** Inline keys by partner, at the revision they were imported for. */
  readonly #inline = new Map<string, { readonly revision: number; readonly keys: readonly VerificationKey[] }>();

  constructor(private readonly options: PartnerKeysOptions) {}

  /** The keys to verify a token of `partner` with; `kid`: the token's, to refetch once when unknown. */
  async keysFor(partner: Partner, kid: string | undefined): Promise<readonly VerificationKey[]> {
    if (partner.keys) return this.inlineKeys(partner);
    const source = partner.jwksUri ?? `discovery:${partner.issuer}`;
    const now = this.options.now();
    const interval = this.options.refetchIntervalMs ?? 10_000;
    const fetched = this.#fetched.get(source);
    const isFresh = fetched !== undefined && now - fetched.fetchedAtMs < (this.options.ttlMs ?? 300_000);
    if (isFresh) {
      if (kid === undefined || fetched.keys.some((key) => key.kid === kid)) return fetched.keys;
      // An unknown kid: the partner may have rotated. Once per interval, then the cached set answers.
      if (now - (this.#lastRefetchMs.get(source) ?? Number.NEGATIVE_INFINITY) < interval) return fetched.keys;
      this.#lastRefetchMs.set(source, now);
    } else {
      const failure = this.#failures.get(source);
      // Failed moments ago: not asked again yet; the keys fetched before, if any, answer meanwhile.
      if (failure && now - failure.atMs < interval) {
        if (fetched) return fetched.keys;
        throw new PartnerKeysUnavailable(partner.partnerId, failure.reason);
      }
    }
    return this.fetch(partner, source);
  }

  private inlineKeys(partner: Partner): readonly VerificationKey[] {
    const cached = this.#inline.get(partner.partnerId);
    if (cached?.revision === partner.revision) return cached.keys;
    const keys = importKeySet(partner.keys as { keys: readonly unknown[] });
    this.#inline.set(partner.partnerId, { revision: partner.revision, keys });
    return keys;
  }

  private fetch(partner: Partner, source: string): Promise<readonly VerificationKey[]> {
    let inFlight = this.#inFlight.get(source);
    if (!inFlight) {
      inFlight = this.load(partner)
        .then(
          (keys) => {
            this.#fetched.set(source, { keys, fetchedAtMs: this.options.now() });
            this.#failures.delete(source);
            return keys;
          },
          (error: PartnerKeysUnavailable) => {
            this.#failures.set(source, { atMs: this.options.now(), reason: error.message });
            // Keys fetched before keep answering until the partner is reachable again.
            const fetched = this.#fetched.get(source);
            if (fetched) return fetched.keys;
            throw error;
          },
        )
        .finally(() => this.#inFlight.delete(source));
      this.#inFlight.set(source, inFlight);
    }
    return inFlight;
  }

  private async load(partner: Partner): Promise<readonly VerificationKey[]> {
    const fail = (reason: string): never => {
      throw new PartnerKeysUnavailable(partner.partnerId, reason);
    };
    let jwksUri = partner.jwksUri;
    try {
      if (!jwksUri) {
        const discovery = await this.options.fetchJson(`${partner.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`);
        const document = discovery as { issuer?: unknown; jwks_uri?: unknown } | null;
        // OIDC Discovery §4.3: the document must name the issuer it was fetched for.
        if (!document || document.issuer !== partner.issuer) fail('the discovery document names another issuer');
        if (typeof document?.jwks_uri !== 'string') fail('the discovery document has no jwks_uri');
        jwksUri = document?.jwks_uri as string;
      }
      const keySet = await this.options.fetchJson(jwksUri);
      if (!isKeySet(keySet)) fail('the JWKS is not a key set');
      return importKeySet(keySet as { keys: unknown[] });
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) throw error;
      return fail((error as Error).message);
    }
  }
}
