/**
 * A webhook receiver on loopback for the tests: it records every request (headers and raw
 * body) and answers each with the next scripted response, then with the default one.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  readonly headers: Record<string, string>;
  readonly body: string;
  readonly receivedAtMs: number;
}

export interface ScriptedResponse {
  /** Never answer: the request stays open until the sender gives up or dies. */
  readonly hang?: boolean;
  readonly status: number;
  readonly headers?: Record<string, string>;
  readonly body?: string;
}

export interface WebhookReceiver {
  readonly url: string;
  readonly received: ReceivedWebhook[];
  /** The next requests are answered with these, in order. */
  script(...responses: ScriptedResponse[]): void;
  /** Resolves once `count` requests have come (rejects after `timeoutMs`). */
  waitFor(count: number, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(defaultResponse: ScriptedResponse = { status: 204 }): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const scripted: ScriptedResponse[] = [];
  const waiters: (() => void)[] = [];
  const server = http.createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const headers = Object.fromEntries(Object.entries(request.headers).map(([name, value]) => [name, Array.isArray(value) ? value.join(', ') : (value ?? '')]));
      received.push({ headers, body: Buffer.concat(chunks).toString('utf8'), receivedAtMs: Date.now() });
      const answer = scripted.shift() ?? defaultResponse;
      if (!answer.hang) {
        response.writeHead(answer.status, answer.headers);
        response.end(answer.body ?? '');
      }
      for (const wake of waiters.splice(0)) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    script: (...responses) => void scripted.push(...responses),
    async waitFor(count, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (received.length < count) {
        if (Date.now() > deadline) throw new Error(`expected ${count} webhook requests, got ${received.length}`);
        await new Promise<void>((resolve) => {
          waiters.push(resolve);
          setTimeout(resolve, 100);
        });
      }
      return received.slice(0, count);
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
