/**
 * An HTTP proxy in front of the IdP for clients the tests do not drive through `send` (the
 * bundled actions, in a process of their own): it relays every request and reply unchanged
 * and checks each reply against the OpenAPI document on the way. A process cannot throw
 * into the test, so mismatches are collected, and `assertAllDocumented()` fails with them.
 * When the IdP cannot be reached, the client's connection is cut, as it would be without
 * the proxy.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { assertDocumentedReply } from './openapi.js';

export interface DocumentingProxy {
  /** `http://127.0.0.1:<port>`: known before the IdP starts, so the IdP can be configured with it. */
  readonly url: string;
  /** Replies relayed so far. */
  readonly relayed: number;
  setTarget(url: string): void;
  /** Throws with every reply that did not match the document, and forgets them. */
  assertAllDocumented(): void;
  close(): Promise<void>;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length']);

export async function startDocumentingProxy(): Promise<DocumentingProxy> {
  let target: URL | undefined;
  let relayed = 0;
  const mismatches: string[] = [];

  const server = http.createServer((request, response) => {
    if (!target) return void request.socket.destroy();
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: request.method, path: request.url, headers: request.headers },
      (reply) => {
        const chunks: Buffer[] = [];
        reply.on('data', (chunk: Buffer) => chunks.push(chunk));
        reply.on('end', () => {
          const body = Buffer.concat(chunks);
          const headers = new Headers();
          for (const [name, value] of Object.entries(reply.headers)) {
            if (value !== undefined) headers.set(name, Array.isArray(value) ? value.join(', ') : value);
          }
          const text = body.toString('utf8');
          let json: unknown;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            json = undefined;
          }
          try {
            assertDocumentedReply(request.method ?? 'GET', request.url ?? '/', { status: reply.statusCode ?? 0, headers, body: json, text });
          } catch (error) {
            mismatches.push((error as Error).message);
          }
          relayed += 1;
          const relayedHeaders = Object.fromEntries(Object.entries(reply.headers).filter(([name]) => !HOP_BY_HOP.has(name)));
          const length = request.method === 'HEAD' ? reply.headers['content-length'] : body.length;
          response.writeHead(reply.statusCode ?? 502, { ...relayedHeaders, ...(length === undefined ? {} : { 'content-length': length }) });
          response.end(body);
        });
      },
    );
    upstream.on('error', () => request.socket.destroy());
    request.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get relayed() {
      return relayed;
    },
    setTarget: (url) => {
      target = new URL(url);
    },
    assertAllDocumented: () => {
      const found = mismatches.splice(0);
      if (found.length > 0) throw new Error(`${found.length} replies relayed to a client did not match the OpenAPI document:\n${found.join('\n')}`);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
