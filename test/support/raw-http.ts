/**
 * HTTP/1.1 over a bare TCP socket, for requests `fetch` and `node:http` refuse to send:
 * invalid bytes in the request target and header values, repeated headers, NUL bytes,
 * chunked bodies. Each request has its own connection (`Connection: close`), and the
 * answer is read to the end of the stream, so a reply can never be mistaken for the
 * next one's.
 */
import net from 'node:net';

export type Bytes = string | Buffer;

export interface RawRequest {
  /** Sent as is: `GET`, `post`, `FOO`… */
  readonly method: string;
  /** The request target, bytes as given (no encoding is applied). */
  readonly target: Bytes;
  /** Name and value pairs, in order, repeats allowed; a string is sent as latin1 bytes. */
  readonly headers?: readonly (readonly [Bytes, Bytes])[];
  readonly body?: Bytes;
  /** `length` (default): a Content-Length header; `chunked`: Transfer-Encoding: chunked in random-sized chunks. */
  readonly framing?: 'length' | 'chunked';
}

export interface RawReply {
  readonly status: number;
  /** Lower-case names; repeated headers keep every value. */
  readonly headers: Record<string, string[]>;
  readonly body: Buffer;
  readonly text: string;
  /** The parsed body when it is JSON, else undefined. */
  readonly json: unknown;
}

const bytes = (value: Bytes) => (typeof value === 'string' ? Buffer.from(value, 'latin1') : value);

export function encodeRawRequest(hostAndPort: string, request: RawRequest): Buffer {
  const body = request.body === undefined ? undefined : typeof request.body === 'string' ? Buffer.from(request.body, 'utf8') : request.body;
  const lines: Buffer[] = [Buffer.from(`${request.method} `, 'latin1'), bytes(request.target), Buffer.from(` HTTP/1.1\r\nHost: ${hostAndPort}\r\nConnection: close\r\n`)];
  for (const [name, value] of request.headers ?? []) lines.push(bytes(name), Buffer.from(': '), bytes(value), Buffer.from('\r\n'));
  if (body === undefined) {
    lines.push(Buffer.from('\r\n'));
  } else if (request.framing === 'chunked') {
    lines.push(Buffer.from('Transfer-Encoding: chunked\r\n\r\n'));
    for (let at = 0; at < body.length; ) {
      const size = Math.min(body.length - at, 1 + ((at * 7919) % 4096));
      lines.push(Buffer.from(`${size.toString(16)}\r\n`), body.subarray(at, at + size), Buffer.from('\r\n'));
      at += size;
    }
    lines.push(Buffer.from('0\r\n\r\n'));
  } else {
    lines.push(Buffer.from(`Content-Length: ${body.length}\r\n\r\n`), body);
  }
  return Buffer.concat(lines);
}

export async function rawRequest(baseUrl: string, request: RawRequest, timeoutMs = 10_000): Promise<RawReply> {
  const { hostname, port, host } = new URL(baseUrl);
  const received = await new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms to ${request.method} ${String(request.target).slice(0, 100)}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may answer (413, a parse error) and close before it has read the whole body.
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET' && error.code !== 'EPIPE') {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
    // No half-close: Node's server aborts a request whose client has ended its side.
    socket.write(encodeRawRequest(host, request));
  });
  return parseRawReply(received, request.method.toUpperCase() === 'HEAD');
}

export function parseRawReply(received: Buffer, isHead = false): RawReply {
  // Interim answers (100 Continue to an Expect header) come before the final one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(received.subarray(0, 13).toString('latin1')) && received.indexOf('\r\n\r\n') >= 0) {
    received = received.subarray(received.indexOf('\r\n\r\n') + 4);
  }
  const headEnd = received.indexOf('\r\n\r\n');
  if (headEnd < 0) throw new Error(`no HTTP answer (received ${received.length} bytes: ${JSON.stringify(received.toString('latin1').slice(0, 200))})`);
  const [statusLine, ...headerLines] = received.subarray(0, headEnd).toString('latin1').split('\r\n');
  const statusMatch = /^HTTP\/1\.[01] (\d{3})/.exec(statusLine);
  if (!statusMatch) throw new Error(`not an HTTP status line: ${JSON.stringify(statusLine)}`);
  const headers: Record<string, string[]> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    (headers[name] ??= []).push(line.slice(colon + 1).trim());
  }
  let body = received.subarray(headEnd + 4);
  if (isHead) body = Buffer.alloc(0);
  else if (headers['transfer-encoding']?.some((value) => /chunked/i.test(value))) body = decodeChunked(body);
  else if (headers['content-length']) {
    const length = Number(headers['content-length'][0]);
    if (body.length < length) throw new Error(`truncated answer: ${body.length} of ${length} bytes`);
    body = body.subarray(0, length);
  }
  const text = body.toString('utf8');
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: Number(statusMatch[1]), headers, body, text, json };
}

function decodeChunked(encoded: Buffer): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (;;) {
    const lineEnd = encoded.indexOf('\r\n', at);
    if (lineEnd < 0) throw new Error('truncated chunked answer');
    const size = parseInt(encoded.subarray(at, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) throw new Error('malformed chunk size');
    if (size === 0) return Buffer.concat(parts);
    parts.push(encoded.subarray(lineEnd + 2, lineEnd + 2 + size));
    at = lineEnd + 2 + size + 2;
  }
}
