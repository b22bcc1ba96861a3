/**
 * The egress guard: every outbound request of the server (a federation partner's OIDC
 * discovery document and JWKS; webhooks later) goes through here (CONTRACT.md, last
 * bullet). The rules:
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
 * Errors: EgressRefused (the policy said no) or EgressFailed (network, timeout, size,
 * status, JSON). Their messages name the URL without its query and never quote a response
 * body. Nothing is logged here; the caller decides.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { formatAddress, parseAddress, parseCidr, isInRange, refusedRangeOf, unmapped, type Cidr, type IpAddress } from './address-ranges.js';

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

export interface EgressFetch {
  /** GET the URL (`Accept: application/json`) and answer its body as text. */
  fetchText(url: string): Promise<string>;
  /** GET the URL (`Accept: application/json`) and answer its body parsed as JSON. */
  fetchJson(url: string): Promise<unknown>;
}

export const DEFAULT_EGRESS_TIMEOUT_MS = 5_000;
export const DEFAULT_EGRESS_MAX_BYTES = 256 * 1024;

/** What the policy refused: a URL it cannot judge, the scheme, an address, a redirect. */
export type EgressRefusal = 'url' | 'scheme' | 'address' | 'redirect';
/** What went wrong with a permitted request. */
export type EgressFailure = 'resolve' | 'network' | 'timeout' | 'size' | 'status' | 'json';

export class EgressRefused extends Error {
  constructor(
    readonly reason: EgressRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'EgressRefused';
  }
}

export class EgressFailed extends Error {
  constructor(
    readonly reason: EgressFailure,
    message: string,
    /** The HTTP status, for reason `status`. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EgressFailed';
  }
}

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

  function get(url: URL, where: string, address: IpAddress, signal: AbortSignal): Promise<string> {
    const isHttps = url.protocol === 'https:';
    const connectTo = formatAddress(address);
    return new Promise<string>((resolvePromise, reject) => {
      let settled = false;
      const settle = (error: Error | undefined, text?: string) => {
        if (settled) return;
        settled = true;
        if (error) {
          request.destroy();
          reject(error);
        } else {
          resolvePromise(text as string);
        }
      };
      const requestOptions: https.RequestOptions = {
        method: 'GET',
        protocol: url.protocol,
        // The checked address itself: nothing is looked up again (DNS rebinding).
        host: connectTo,
        family: address.family,
        lookup: (_hostname, _options, callback) =>
          (callback as (error: null, address: string | ResolvedAddress[], family?: number) => void)(
            null,
            (_options as { all?: boolean }).all ? [{ address: connectTo, family: address.family }] : connectTo,
            address.family,
          ),
        port: url.port === '' ? (isHttps ? 443 : 80) : Number(url.port),
        path: `${url.pathname}${url.search}`,
        headers: { host: url.host, accept: 'application/json', 'accept-encoding': 'identity' },
        // A connection of its own: no pooled socket, no global agent (and so no proxy).
        agent: false,
        signal,
      };
      if (isHttps) {
        // The certificate is checked against the hostname (SNI too), not the address.
        requestOptions.servername = net.isIP(url.hostname.replace(/^\[(.*)\]$/, '$1')) ? '' : url.hostname;
        if (ca !== undefined) requestOptions.ca = ca;
      }
      const request = (isHttps ? https : http).request(requestOptions, (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          settle(new EgressRefused('redirect', `${where} refused: it answered a redirect (${status}), which is not followed`));
          return;
        }
        if (status < 200 || status >= 300) {
          settle(new EgressFailed('status', `${where} answered ${status}`, status));
          return;
        }
        const tooLarge = () => new EgressFailed('size', `${where}: the response is larger than ${maxBytes} bytes`);
        const declared = Number(response.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxBytes) {
          settle(tooLarge());
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxBytes) settle(tooLarge());
          else chunks.push(chunk);
        });
        response.on('end', () => settle(undefined, Buffer.concat(chunks).toString('utf8')));
        response.on('error', (error) => settle(failure(where, error, signal)));
        response.on('close', () => {
          if (!response.complete) settle(failure(where, new Error('the connection closed before the response ended'), signal));
        });
      });
      request.on('error', (error) => settle(failure(where, error, signal)));
      request.end();
    });
  }

  async function fetchText(raw: string): Promise<string> {
    const url = target(raw);
    const where = `${url.protocol}//${url.host}${url.pathname}`;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    try {
      const aborted = new Promise<never>((_, reject) =>
        controller.signal.addEventListener('abort', () => reject(timedOut(where)), { once: true }),
      );
      aborted.catch(() => undefined);
      const addresses = await Promise.race([addressesOf(url.hostname, where), aborted]);
      const address = checked(url, where, addresses);
      return await Promise.race([get(url, where, address, controller.signal), aborted]);
    } finally {
      clearTimeout(timer);
    }
  }

  function timedOut(where: string): EgressFailed {
    return new EgressFailed('timeout', `${where}: no complete response within ${timeoutMs} ms`);
  }

  function failure(where: string, error: unknown, signal: AbortSignal): EgressFailed {
    return signal.aborted ? timedOut(where) : new EgressFailed('network', `${where}: ${codeOf(error)}`);
  }

  return {
    fetchText,
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

/** An error's code (ECONNREFUSED, ENOTFOUND, …) or message: never anything a server sent. */
function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
