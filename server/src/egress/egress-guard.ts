/**
 * The egress guard: every outbound request of the server (a federation partner's OIDC
 * discovery document and JWKS by GET; webhook deliveries by POST) goes through here
 * (CONTRACT.md, last bullet). The rules:
 *
 * - `https:`, or `http:` only when every address the host resolves to is inside the allowed
 *   ranges (EGRESS_ALLOW_CIDRS);
 * - the host is resolved once, with the injected resolver; the request is refused when any
 *   answer lies in a refused range (address-ranges.ts: loopback, private, link-local,
 *   shared, reserved, unspecified, NAT64, 6to4, …) and not in an allowed range. IP-literal
 *   URLs are judged the same way;
 * - the connection goes to the address that was checked (no second lookup, so DNS
 *   rebinding cannot swap it), with the hostname kept for `Host` and TLS (SNI, certificate);
 * - no redirects (a 3xx is refused), no proxy (node:http(s) directly, HTTP(S)_PROXY
 *   ignored), a cap on the body, one deadline for resolution, connection and body.
 *
 * GET (fetchText, fetchJson) wants a 2xx and reads the whole body up to the cap. POST
 * answers any final status with only the first KiB of the body (then the connection is
 * closed). checkUrl applies the rules, resolution included, without connecting. GET and
 * POST share one request path, so the rules cannot drift apart.
 *
 * Errors (egress-errors.ts): EgressRefused (the policy said no) or EgressFailed (resolve,
 * network, timeout, size, and for GET status and JSON). Their messages name the URL
 * without its query and never quote a response body. Nothing is logged here; the caller
 * decides. The request itself (connection, headers, reading the body) is egress-request.ts.
 */
import dns from 'node:dns';
import type http from 'node:http';
import { formatAddress, parseAddress, parseCidr, isInRange, refusedRangeOf, unmapped, type Cidr, type IpAddress } from './address-ranges.js';
import { codeOf, EgressFailed, EgressRefused } from './egress-errors.js';
import { exchange, readBody, timedOut, type Attempt } from './egress-request.js';

export { EgressFailed, EgressRefused, type EgressFailure, type EgressRefusal } from './egress-errors.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: number;
}
/** Every address a hostname resolves to, as `dns.promises.lookup(hostname, { all: true })` answers. */
export type Resolver = (hostname: string) => Promise<readonly ResolvedAddress[]>;

export interface EgressOptions {
  /** Ranges (CIDRs) that may be reached although refused by default, and over plain `http:`. */
  readonly allowCidrs: readonly string[];
  /** Default: the system resolver (`dns.promises.lookup`, all answers). */
  readonly resolve?: Resolver;
  /** The whole request, resolution included. Default 5 s. */
  readonly timeoutMs?: number;
  /** The largest body accepted. Default 256 KiB. */
  readonly maxBytes?: number;
  /** Trusted CA certificates for `https:` instead of the system's (tests with their own CA). */
  readonly ca?: string | Buffer | ReadonlyArray<string | Buffer>;
}

export interface EgressPostRequest {
  /** Sent as given (Content-Type, User-Agent, signatures, …); the guard sets Host and Content-Length. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string | Buffer;
  /** Resolution, connection and the response up to its body prefix. Default: the guard's timeout. */
  readonly timeoutMs?: number;
}

/** Any final answer but a redirect: 2xx, 4xx and 5xx alike. */
export interface EgressResponse {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  /** The first EGRESS_RESPONSE_PREFIX_BYTES of the body as UTF-8; the rest is never read. */
  readonly bodyPrefix: string;
  /** From the call to the body prefix, resolution included. */
  readonly durationMs: number;
}

export interface EgressFetch {
  /** GET the URL (`Accept: application/json`) and answer its body as text. */
  fetchText(url: string): Promise<string>;
  /** GET the URL (`Accept: application/json`) and answer its body parsed as JSON. */
  fetchJson(url: string): Promise<unknown>;
  /** POST the body and answer whatever final status comes back (a webhook delivery); a 3xx is refused. */
  post(url: string, request: EgressPostRequest): Promise<EgressResponse>;
  /** The URL, scheme and address rules, resolution included, without connecting (a webhook URL being saved). */
  checkUrl(url: string): Promise<void>;
}

export const DEFAULT_EGRESS_TIMEOUT_MS = 5_000;
export const DEFAULT_EGRESS_MAX_BYTES = 256 * 1024;
/** How much of a POST's response body is kept: enough to tell why a receiver refused. */
export const EGRESS_RESPONSE_PREFIX_BYTES = 1024;

const systemResolver: Resolver = (hostname) => dns.promises.lookup(hostname, { all: true, verbatim: true });

/** Parses CIDRs, throwing a TypeError naming the first bad one. */
export function parseAllowCidrs(texts: readonly string[]): Cidr[] {
  return texts.map((text) => {
    const parsed = parseCidr(text);
    if (!parsed) throw new TypeError(`not a CIDR: "${text}"`);
    return parsed;
  });
}

export function createEgressFetch(options: EgressOptions): EgressFetch {
  const allowed = parseAllowCidrs(options.allowCidrs);
  const resolve = options.resolve ?? systemResolver;
  const timeoutMs = options.timeoutMs ?? DEFAULT_EGRESS_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_EGRESS_MAX_BYTES;
  const ca = options.ca === undefined ? undefined : Array.isArray(options.ca) ? [...options.ca] : (options.ca as string | Buffer);
  const isAllowed = (address: IpAddress) => allowed.some((range) => isInRange(address, range));

  /** The URL, or a refusal. */
  function target(raw: string): URL {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new EgressRefused('url', 'outbound request refused: not an absolute URL');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') {
      throw new EgressRefused('scheme', `outbound request to ${url.protocol} refused: https only (http only to allowed ranges)`);
    }
    if (url.username !== '' || url.password !== '') {
      throw new EgressRefused('url', `outbound request to ${url.protocol}//${url.host} refused: credentials in the URL`);
    }
    return url;
  }

  /** The host's addresses: the literal, or the resolver's answers. */
  async function addressesOf(hostname: string, where: string): Promise<IpAddress[]> {
    const literal = parseAddress(hostname.replace(/^\[(.*)\]$/, '$1'));
    if (literal) return [literal];
    let answers: readonly ResolvedAddress[];
    try {
      answers = await resolve(hostname);
    } catch (error) {
      throw new EgressFailed('resolve', `${where}: the host could not be resolved (${codeOf(error)})`);
    }
    const addresses = answers.map((answer) => parseAddress(answer.address));
    if (addresses.length === 0 || addresses.some((address) => address === undefined)) {
      throw new EgressFailed('resolve', `${where}: the host resolved to no usable address`);
    }
    return addresses as IpAddress[];
  }

  /** The address to connect to, once every answer passed; else a refusal. */
  function checked(url: URL, where: string, addresses: readonly IpAddress[]): IpAddress {
    for (const address of addresses) {
      const refused = refusedRangeOf(address);
      if (refused && !isAllowed(address)) {
        throw new EgressRefused(
          'address',
          `${where} refused: ${url.hostname} is at ${formatAddress(address)}, in ${refused.range.text} (${refused.name}), which is not an allowed range`,
        );
      }
    }
    if (url.protocol === 'http:' && !addresses.every(isAllowed)) {
      throw new EgressRefused('scheme', `${where} refused: http only to addresses in an allowed range, else https`);
    }
    return unmapped(addresses[0]);
  }

  /**
   * Resolves and judges the URL, then runs `send` with the checked address, all within one
   * deadline (resolution, connection and whatever `send` waits for).
   */
  async function withinDeadline<T>(raw: string, deadlineMs: number, send: (attempt: Attempt) => Promise<T>): Promise<T> {
    const url = target(raw);
    const where = `${url.protocol}//${url.host}${url.pathname}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), deadlineMs);
    try {
      const aborted = new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(timedOut(where, deadlineMs)), { once: true }),
      );
      aborted.catch(() => undefined);
      const addresses = await Promise.race([addressesOf(url.hostname, where), aborted]);
      const address = checked(url, where, addresses);
      return await Promise.race([send({ url, where, address, signal: controller.signal, deadlineMs, ...(ca !== undefined && { ca }) }), aborted]);
    } finally {
      clearTimeout(timer);
    }
  }

  async function fetchText(raw: string): Promise<string> {
    return withinDeadline(raw, timeoutMs, async (attempt) => {
      const response = await exchange(attempt, { method: 'GET', headers: { accept: 'application/json' } });
      const status = response.statusCode ?? 0;
      if (status < 200 || status >= 300) {
        response.destroy();
        throw new EgressFailed('status', `${attempt.where} answered ${status}`, status);
      }
      return (await readBody(response, attempt, maxBytes, 'fail')).toString('utf8');
    });
  }

  async function post(raw: string, request: EgressPostRequest): Promise<EgressResponse> {
    const startedAt = performance.now();
    return withinDeadline(raw, request.timeoutMs ?? timeoutMs, async (attempt) => {
      const response = await exchange(attempt, { method: 'POST', headers: request.headers, body: request.body });
      const prefix = await readBody(response, attempt, EGRESS_RESPONSE_PREFIX_BYTES, 'truncate');
      return {
        status: response.statusCode ?? 0,
        headers: response.headers,
        bodyPrefix: prefix.toString('utf8'),
        durationMs: Math.round(performance.now() - startedAt),
      };
    });
  }

  return {
    fetchText,
    post,
    async checkUrl(raw: string): Promise<void> {
      await withinDeadline(raw, timeoutMs, async () => undefined);
    },
    async fetchJson(raw: string): Promise<unknown> {
      const text = await fetchText(raw);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        const url = new URL(raw);
        throw new EgressFailed('json', `${url.protocol}//${url.host}${url.pathname}: the response is not JSON`);
      }
    },
  };
}

