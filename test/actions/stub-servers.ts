/**
 * Two loopback HTTP servers for the action tests: the runner's ID-token service (what
 * ACTIONS_ID_TOKEN_REQUEST_URL points at) and a scripted IdP answering each path with a
 * queue of replies (the last one repeats), recording every request it receives.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** Loopback hosts a stub can listen on: an address, or `localhost` as the resolver reads it. */
export type LoopbackHost = '127.0.0.1' | '::1' | 'localhost';

async function listen(server: Server, host: LoopbackHost = '127.0.0.1'): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return `http://${host === '::1' ? '[::1]' : host}:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

function readBody(request: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (body += chunk));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}

export interface IdTokenService {
  /** For ACTIONS_ID_TOKEN_REQUEST_URL: already has a query string, as the runner's does. */
  readonly requestUrl: string;
  /** For ACTIONS_ID_TOKEN_REQUEST_TOKEN. */
  readonly requestToken: string;
  /** Every ID token handed out, in order. */
  readonly issued: string[];
  /** The `audience` query parameter of each request. */
  readonly audiences: (string | null)[];
  /** Requests whose Authorization was not `Bearer <requestToken>` (answered 401). */
  readonly unauthorized: number;
  close(): Promise<void>;
}

/** Hands out a new JWT-shaped token per request, like the runner (each single use). */
export async function startIdTokenService(): Promise<IdTokenService> {
  const requestToken = 'runner-request-token-7f3a';
  const issued: string[] = [];
  const audiences: (string | null)[] = [];
  let unauthorized = 0;
  const server = createServer((request, response) => {
    if (request.headers.authorization !== `Bearer ${requestToken}`) {
      unauthorized += 1;
      response.writeHead(401).end();
      return;
    }
    audiences.push(new URL(request.url ?? '/', 'http://localhost').searchParams.get('audience'));
    const claims = Buffer.from(JSON.stringify({ jti: `jti-${issued.length + 1}` })).toString('base64url');
    const token = `eyJhbGciOiJSUzI1NiJ9.${claims}.c2lnbmF0dXJl${issued.length + 1}`;
    issued.push(token);
    response.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ value: token }));
  });
  const base = await listen(server);
  return {
    requestUrl: `${base}/idtoken?api-version=2.0`,
    requestToken,
    issued,
    audiences,
    get unauthorized() {
      return unauthorized;
    },
    close: () => close(server),
  };
}

export type StubReply =
  | { readonly status: number; readonly body?: unknown; readonly headers?: Readonly<Record<string, string>> }
  /** Closes the connection without an answer. */
  | { readonly drop: true };

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

export interface StubIdp {
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Requests received on `path`. */
  requestsTo(path: string): RecordedRequest[];
  /** Replaces the reply queue of `path`. */
  script(path: string, replies: StubReply[]): void;
  close(): Promise<void>;
}

export async function startStubIdp(routes: Record<string, StubReply[]> = {}, host?: LoopbackHost): Promise<StubIdp> {
  const queues = new Map(Object.entries(routes).map(([path, replies]) => [path, [...replies]]));
  const requests: RecordedRequest[] = [];
  const server = createServer(async (request, response) => {
    const path = new URL(request.url ?? '/', 'http://localhost').pathname;
    requests.push({ method: request.method ?? '', path, headers: request.headers, body: await readBody(request) });
    const queue = queues.get(path);
    const reply = queue && (queue.length > 1 ? queue.shift() : queue[0]);
    if (!reply) {
      response.writeHead(404, { 'Content-Type': 'application/json' });
      response.end(JSON.stringify({ code: 'NOT_FOUND', message: 'No such route' }));
    } else if ('drop' in reply) {
      request.socket.destroy();
    } else {
      response.writeHead(reply.status, { 'Content-Type': 'application/json', ...reply.headers });
      response.end(reply.body === undefined ? '' : JSON.stringify(reply.body));
    }
  });
  const url = await listen(server, host);
  return {
    url,
    requests,
    requestsTo: (path) => requests.filter((request) => request.path === path),
    script: (path, replies) => queues.set(path, [...replies]),
    close: () => close(server),
  };
}

/** A loopback URL nothing listens on: connections are refused. */
export async function refusingUrl(): Promise<string> {
  const server = createServer();
  const url = await listen(server);
  await close(server);
  return url;
}
