/**
 * A partner's verification keys: its inline `keys`, its `jwksUri`, or its issuer's OIDC
 * discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`). Fetched
 * documents go through the egress guard (the app's `fetchJson`), never to a URL a token
 * names. Key sets are cached per partner version for `ttlMs`; a token whose kid is not in
 * the cached set refetches at most once per `refetchIntervalMs` per partner, and concurrent
 * lookups share one fetch, so made-up kids cannot become a flood of requests.
 */
import type { JSONWebKeySet } from 'jose';
import type { Partner } from './federation-store.js';

export type FetchJson = (url: string) => Promise<unknown>;

export class PartnerKeysUnavailable extends Error {
  constructor(readonly partnerId: string, reason: string) {
    super(`keys of federation partner ${partnerId} unavailable: ${reason}`);
    this.name = 'PartnerKeysUnavailable';
  }
}

interface Cached {
  readonly version: string;
  readonly keySet: JSONWebKeySet;
  readonly fetchedAtMs: number;
}

export interface PartnerKeysOptions {
  readonly fetchJson: FetchJson;
  readonly now: () => number;
  readonly ttlMs?: number;
  readonly refetchIntervalMs?: number;
}

const isKeySet = (value: unknown): value is JSONWebKeySet =>
  typeof value === 'object' && value !== null && Array.isArray((value as { keys?: unknown }).keys);

export class PartnerKeys {
  readonly #cache = new Map<string, Cached>();
  readonly #lastRefetchMs = new Map<string, number>();
  readonly #inFlight = new Map<string, Promise<JSONWebKeySet>>();

  constructor(private readonly options: PartnerKeysOptions) {}

  /** The key set to verify a token of `partner` with; `kid`: the token's, to refetch once when unknown. */
  async keySetFor(partner: Partner, kid: string | undefined): Promise<JSONWebKeySet> {
    if (partner.keys) return partner.keys as JSONWebKeySet;
    const version = `${partner.partnerId}@${partner.updatedAt}`;
    const now = this.options.now();
    const cached = this.#cache.get(partner.partnerId);
    const isFresh = cached && cached.version === version && now - cached.fetchedAtMs < (this.options.ttlMs ?? 300_000);
    const hasKid = (set: JSONWebKeySet) => kid === undefined || set.keys.some((key) => key.kid === kid);
    if (isFresh && hasKid(cached.keySet)) return cached.keySet;
    if (isFresh) {
      // An unknown kid: the partner may have rotated. Once per interval, then the cached set answers.
      const last = this.#lastRefetchMs.get(partner.partnerId) ?? Number.NEGATIVE_INFINITY;
      if (now - last < (this.options.refetchIntervalMs ?? 10_000)) return cached.keySet;
      this.#lastRefetchMs.set(partner.partnerId, now);
    }
    return this.fetch(partner, version);
  }

  private fetch(partner: Partner, version: string): Promise<JSONWebKeySet> {
    let inFlight = this.#inFlight.get(version);
    if (!inFlight) {
      inFlight = this.load(partner)
        .then((keySet) => {
          this.#cache.set(partner.partnerId, { version, keySet, fetchedAtMs: this.options.now() });
          return keySet;
        })
        .finally(() => this.#inFlight.delete(version));
      this.#inFlight.set(version, inFlight);
    }
    return inFlight;
  }

  private async load(partner: Partner): Promise<JSONWebKeySet> {
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
      return keySet as JSONWebKeySet;
    } catch (error) {
      if (error instanceof PartnerKeysUnavailable) throw error;
      return fail((error as Error).message);
    }
  }
}
