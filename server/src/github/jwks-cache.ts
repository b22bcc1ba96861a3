/**
 * The verification keys of the configured GitHub OIDC issuer, found through its
 * discovery document (OpenID Connect Discovery 1.0 §4) and cached:
 * - keys are fresh for `ttlSeconds`; past that the next lookup refreshes them, and if the
 *   issuer cannot be reached the old keys keep serving for up to `staleLimitSeconds` after
 *   they were fetched, so a GitHub outage does not stop exchanges signed by a known key;
 * - an unknown kid (GitHub rotated) refreshes at once, but at most once per
 *   `refreshIntervalSeconds`, and concurrent lookups share the one in-flight refresh, so a
 *   flood of made-up kids cannot become a flood of requests to GitHub. Loads for the TTL do
 *   not count against that allowance, so a token signed with a new key just after a routine
 *   load is not refused (the actions never retry a 400);
 * - a failed refresh of stale keys is retried at most once per `refreshIntervalSeconds`;
 * - with nothing usable cached and the issuer unreachable, lookups throw
 *   IssuerUnavailableError (fail closed, 503) and the next lookup simply tries again.
 * Keys come only from the configured issuer's jwks_uri, never from anything in a token.
 */
import { importJWK, type CryptoKey } from 'jose';

export class IssuerUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`GitHub OIDC issuer unavailable: ${reason}`);
    this.name = 'IssuerUnavailableError';
  }
}

export interface GitHubJwks {
  /** The RS256 key with this kid; undefined when the issuer's current JWKS has none. */
  getKey(kid: string): Promise<CryptoKey | undefined>;
}

export interface GitHubJwksCacheOptions {
  /** GITHUB_OIDC_ISSUER as loaded by config (no trailing slash). */
  readonly issuer: string;
  readonly ttlSeconds?: number;
  readonly staleLimitSeconds?: number;
  readonly refreshIntervalSeconds?: number;
  readonly timeoutMs?: number;
  /** Milliseconds since the epoch; tests move it. */
  readonly now?: () => number;
}

interface KeySet {
  readonly keys: ReadonlyMap<string, CryptoKey>;
  readonly fetchedAtMs: number;
}

export class GitHubJwksCache implements GitHubJwks {
  readonly #issuer: string;
  readonly #ttlMs: number;
  readonly #staleLimitMs: number;
  readonly #refreshIntervalMs: number;
  readonly #timeoutMs: number;
  readonly #now: () => number;
  #keySet: KeySet | undefined;
  #lastAttemptMs = Number.NEGATIVE_INFINITY;
  #lastKidRefreshMs = Number.NEGATIVE_INFINITY;
  #lastFailure: string | undefined;
  #inFlight: Promise<void> | undefined;

  constructor(options: GitHubJwksCacheOptions) {
    this.#issuer = options.issuer;
    this.#ttlMs = (options.ttlSeconds ?? 600) * 1000;
    this.#staleLimitMs = (options.staleLimitSeconds ?? 86_400) * 1000;
    this.#refreshIntervalMs = (options.refreshIntervalSeconds ?? 10) * 1000;
    this.#timeoutMs = options.timeoutMs ?? 5000;
    this.#now = options.now ?? Date.now;
  }

  async getKey(kid: string): Promise<CryptoKey | undefined> {
    const age = this.#ageMs();
    const isDue = age >= this.#staleLimitMs || (age >= this.#ttlMs && this.#hasIntervalPassed(this.#lastAttemptMs));
    if (isDue) await this.#refresh();
    let key = this.#usableKeys()?.get(kid);
    const pending = key === undefined && !isDue ? this.#refreshForUnknownKid() : undefined;
    if (pending !== undefined) {
      await pending;
      key = this.#usableKeys()?.get(kid);
    }
    if (key !== undefined) return key;
    // An unknown kid while the issuer is failing may be GitHub's new key: say "try later", not "bad token".
    if (this.#usableKeys() === undefined || this.#lastFailure !== undefined) {
      throw new IssuerUnavailableError(this.#lastFailure ?? 'no keys');
    }
    return undefined;
  }

  /** Joins a refresh already under way, else starts one if none was started for a kid within the interval. */
  #refreshForUnknownKid(): Promise<void> | undefined {
    if (this.#inFlight !== undefined) return this.#inFlight;
    if (!this.#hasIntervalPassed(this.#lastKidRefreshMs)) return undefined;
    this.#lastKidRefreshMs = this.#now();
    return this.#refresh();
  }

  #hasIntervalPassed(sinceMs: number): boolean {
    return this.#now() - sinceMs >= this.#refreshIntervalMs;
  }

  #ageMs(): number {
    return this.#keySet === undefined ? Number.POSITIVE_INFINITY : this.#now() - this.#keySet.fetchedAtMs;
  }

  #usableKeys(): ReadonlyMap<string, CryptoKey> | undefined {
    return this.#ageMs() < this.#staleLimitMs ? this.#keySet?.keys : undefined;
  }

  #refresh(): Promise<void> {
    this.#inFlight ??= this.#load().finally(() => {
      this.#inFlight = undefined;
    });
    return this.#inFlight;
  }

  async #load(): Promise<void> {
    this.#lastAttemptMs = this.#now();
    const outcome = await fetchIssuerKeys(this.#issuer, this.#timeoutMs).then(
      (keys) => ({ keys }),
      (error: unknown) => ({ failure: describeFailure(error) }),
    );
    if ('keys' in outcome) {
      this.#keySet = { keys: outcome.keys, fetchedAtMs: this.#now() };
      this.#lastFailure = undefined;
    } else {
      this.#lastFailure = outcome.failure;
    }
  }
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

async function fetchIssuerKeys(issuer: string, timeoutMs: number): Promise<Map<string, CryptoKey>> {
  const discovery = await fetchJson(`${issuer}/.well-known/openid-configuration`, timeoutMs);
  // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be identical to the one we asked.
  if (discovery.issuer !== issuer) throw new Error(`discovery issuer ${JSON.stringify(discovery.issuer)} is not ${issuer}`);
  return importUsableKeys(await fetchJson(checkJwksUri(discovery.jwks_uri, issuer), timeoutMs));
}

function checkJwksUri(value: unknown, issuer: string): string {
  const url = typeof value === 'string' && URL.canParse(value) ? new URL(value) : undefined;
  if (url === undefined) throw new Error('discovery has no valid jwks_uri');
  const isLoopbackHttp =
    url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname) && LOOPBACK_HOSTS.has(new URL(issuer).hostname);
  if (url.protocol !== 'https:' && !isLoopbackHttp) throw new Error(`jwks_uri ${value} is not https`);
  return url.href;
}

async function fetchJson(url: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    headers: { accept: 'application/json' },
    // A redirect could lead anywhere, including plain http; GitHub's endpoints do not redirect.
    redirect: 'error',
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (!response.ok) {
    await response.body?.cancel();
    throw new Error(`${url} answered HTTP ${response.status}`);
  }
  const body: unknown = await response.json();
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`${url} is not a JSON object`);
  return body as Record<string, unknown>;
}

/**
 * RFC 7517 §4: only RSA signing keys meant for RS256 (use and alg absent or matching), of
 * at least 2048 bits; a kid listed twice is ambiguous and dropped. A set with no usable key
 * is treated as a failed fetch, so it never replaces a working one.
 */
async function importUsableKeys(jwks: Record<string, unknown>): Promise<Map<string, CryptoKey>> {
  if (!Array.isArray(jwks.keys)) throw new Error('JWKS has no keys array');
  const candidates = jwks.keys.filter(isUsableRsaKey);
  const kidCounts = new Map<string, number>();
  for (const jwk of candidates) kidCounts.set(jwk.kid, (kidCounts.get(jwk.kid) ?? 0) + 1);
  const keys = new Map<string, CryptoKey>();
  for (const jwk of candidates.filter((candidate) => kidCounts.get(candidate.kid) === 1)) {
    const key = await importJWK({ kty: 'RSA', n: jwk.n, e: jwk.e }, 'RS256').catch(() => undefined);
    if (key !== undefined && !(key instanceof Uint8Array)) keys.set(jwk.kid, key);
  }
  if (keys.size === 0) throw new Error('JWKS has no usable RS256 signing key');
  return keys;
}

interface RsaJwk {
  readonly kid: string;
  readonly n: string;
  readonly e: string;
}

function isUsableRsaKey(value: unknown): value is RsaJwk {
  if (typeof value !== 'object' || value === null) return false;
  const jwk = value as Record<string, unknown>;
  return (
    jwk.kty === 'RSA' &&
    (jwk.use === undefined || jwk.use === 'sig') &&
    (jwk.alg === undefined || jwk.alg === 'RS256') &&
    typeof jwk.kid === 'string' &&
    jwk.kid !== '' &&
    typeof jwk.e === 'string' &&
    typeof jwk.n === 'string' &&
    Buffer.from(jwk.n, 'base64url').length >= 256
  );
}

function describeFailure(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause instanceof Error ? `: ${error.cause.message}` : '';
  return `${error.message}${cause}`;
}
