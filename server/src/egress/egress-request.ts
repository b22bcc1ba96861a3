/**
 * One outbound request of the egress guard (egress-guard.ts), once its URL has passed the
 * rules: sent to the checked address over a connection of its own (no agent, no proxy),
 * with the hostname kept for Host and TLS; a 3xx refused; the body read up to a limit.
 * GET and POST both go through `exchange` and `readBody`.
 */
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { formatAddress, type IpAddress } from './address-ranges.js';
import { codeOf, EgressFailed, EgressRefused } from './egress-errors.js';

/** A request whose URL passed the rules, bound to the address that was checked and to its deadline. */
export interface Attempt {
  readonly url: URL;
  /** The URL without its query, for messages. */
  readonly where: string;
  readonly address: IpAddress;
  readonly signal: AbortSignal;
  readonly deadlineMs: number;
  /** Trusted CA certificates for `https:` instead of the system's. */
  readonly ca?: string | Buffer | Array<string | Buffer>;
}

export interface Outgoing {
  readonly method: 'GET' | 'POST';
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
}

/**
 * Sends one request to the checked address and answers the response once its head has
 * arrived; a 3xx is refused, never followed. The body is left to the caller to read.
 */
export function exchange(attempt: Attempt, outgoing: Outgoing): Promise<http.IncomingMessage> {
  const { url, where, address, signal, ca } = attempt;
  const isHttps = url.protocol === 'https:';
  const connectTo = formatAddress(address);
  return new Promise<http.IncomingMessage>((resolvePromise, reject) => {
    let settled = false;
    const settle = (error: Error | undefined, response?: http.IncomingMessage) => {
      if (settled) return;
      settled = true;
      if (error) {
        request.destroy();
        reject(error);
      } else {
        resolvePromise(response as http.IncomingMessage);
      }
    };
    const requestOptions: https.RequestOptions = {
      method: outgoing.method,
      protocol: url.protocol,
      // The checked address itself: nothing is looked up again (DNS rebinding).
      host: connectTo,
      family: address.family,
      lookup: (_hostname, _options, callback) =>
        (callback as (error: null, address: string | Array<{ address: string; family: number }>, family?: number) => void)(
          null,
          (_options as { all?: boolean }).all ? [{ address: connectTo, family: address.family }] : connectTo,
          address.family,
        ),
      port: url.port === '' ? (isHttps ? 443 : 80) : Number(url.port),
      path: `${url.pathname}${url.search}`,
      // After the caller's headers: Host names the URL that was checked, the length is the body's.
      headers: {
        ...outgoing.headers,
        host: url.host,
        'accept-encoding': 'identity',
        ...(outgoing.body !== undefined && { 'content-length': String(Buffer.byteLength(outgoing.body)) }),
      },
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
      settle(undefined, response);
    });
    request.on('error', (error) => settle(failure(attempt, error)));
    request.end(outgoing.body);
  });
}

/**
 * Reads the body, at most `limitBytes` of it. Beyond the limit, `fail` refuses the response
 * (size) and `truncate` answers the first `limitBytes` and closes the connection: nothing
 * more is read or kept.
 */
export function readBody(response: http.IncomingMessage, attempt: Attempt, limitBytes: number, beyondLimit: 'fail' | 'truncate'): Promise<Buffer> {
  return new Promise<Buffer>((resolvePromise, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (error?: Error) => {
      if (settled) return;
      settled = true;
      if (error) reject(error);
      else resolvePromise(Buffer.concat(chunks).subarray(0, limitBytes));
      if (error || !response.complete) response.destroy();
    };
    const tooLarge = () => new EgressFailed('size', `${attempt.where}: the response is larger than ${limitBytes} bytes`);
    const declared = Number(response.headers['content-length']);
    if (beyondLimit === 'fail' && Number.isFinite(declared) && declared > limitBytes) {
      settle(tooLarge());
      return;
    }
    response.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (beyondLimit === 'fail' && size > limitBytes) {
        settle(tooLarge());
        return;
      }
      chunks.push(chunk);
      if (beyondLimit === 'truncate' && size >= limitBytes) settle();
    });
    response.on('end', () => settle());
    response.on('error', (error) => settle(failure(attempt, error)));
    response.on('close', () => {
      if (!response.complete) settle(failure(attempt, new Error('the connection closed before the response ended')));
    });
  });
}

export function timedOut(where: string, deadlineMs: number): EgressFailed {
  return new EgressFailed('timeout', `${where}: no complete response within ${deadlineMs} ms`);
}

function failure(attempt: Attempt, error: unknown): EgressFailed {
  return attempt.signal.aborted ? timedOut(attempt.where, attempt.deadlineMs) : new EgressFailed('network', `${attempt.where}: ${codeOf(error)}`);
}
