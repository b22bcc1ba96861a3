/**
 * SIGTERM while keep-alive clients are sending: the real process (compiled main.js)
 * finishes what it has accepted, tells every client to close, refuses new connections
 * and exits 0 promptly. No request is reset, whether it was in flight, half uploaded or
 * just sent on a keep-alive socket the server considered idle.
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createTestDatabase, isRealPostgres, testPoolMode, type TestDatabase } from '../support/database.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { ADMIN } from '../support/test-server.js';
import { sleep } from '../support/load.js';

type Outcome =
  | { readonly kind: 'response'; readonly status: number; readonly body: string; readonly connection: string | undefined; readonly sentAt: number }
  | { readonly kind: 'error'; readonly code: string; readonly isReusedSocket: boolean; readonly sentAt: number };

/** One HTTP/1.1 request on the client's own keep-alive agent; `upload` sends the body in two parts. */
function request(
  agent: http.Agent,
  url: URL,
  options: { method: string; path: string; headers?: Record<string, string>; body?: string; upload?: Promise<void> },
): Promise<Outcome> {
  const sentAt = performance.now();
  return new Promise((resolve) => {
    const req = http.request({ host: url.hostname, port: url.port, method: options.method, path: options.path, headers: options.headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ kind: 'response', status: res.statusCode ?? 0, body, connection: res.headers.connection, sentAt }));
      res.on('error', (error: NodeJS.ErrnoException) => resolve({ kind: 'error', code: error.code ?? error.message, isReusedSocket: req.reusedSocket, sentAt }));
    });
    req.on('error', (error: NodeJS.ErrnoException) => resolve({ kind: 'error', code: error.code ?? error.message, isReusedSocket: req.reusedSocket, sentAt }));
    const body = options.body ?? '';
    if (!options.upload) return void req.end(body);
    const half = Math.floor(body.length / 2);
    req.write(body.slice(0, half));
    void options.upload.then(() => req.end(body.slice(half)));
  });
}

describe('SIGTERM under keep-alive load', () => {
  let testDatabase: TestDatabase | undefined;
  let dataDir: string | undefined;
  let server: ServerProcess;

  beforeAll(async () => {
    // On the real PostgreSQL when there is one (CI), else on the embedded database in a fresh DATA_DIR.
    testDatabase = isRealPostgres ? await createTestDatabase() : undefined;
    dataDir = testDatabase ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-sigterm-'));
    server = await startServerProcess({
      ...(testDatabase ? { DATABASE_URL: testDatabase.url, DATABASE_POOL_MODE: testPoolMode } : { DATA_DIR: dataDir }),
      BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId,
      BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret,
      RATE_LIMIT_PER_MINUTE: '0',
      MONTHLY_TOKEN_LIMIT: '0',
    });
  }, 120_000); // above server-process.ts's own 90 s start timer, so a slow start fails with the server's output
  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await testDatabase?.drop();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('completes accepted requests, resets none, refuses new connections and exits 0 promptly', async () => {
    const url = new URL(server.url);
    const tokenBody = new URLSearchParams({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: ADMIN.clientSecret }).toString();
    const tokenRequest = { method: 'POST', path: '/api/v1/token', headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(tokenBody.length) }, body: tokenBody };
    const setupAgent = new http.Agent({ keepAlive: true });
    const first = await request(setupAgent, url, tokenRequest);
    setupAgent.destroy();
    expect(first).toMatchObject({ kind: 'response', status: 200 });
    const adminToken = JSON.parse((first as { body: string }).body).access_token as string;
    const listRequest = { method: 'GET', path: '/api/v1/agents?limit=5', headers: { Authorization: `Bearer ${adminToken}` } };

    // 'close', not 'exit': at 'exit' the child's stdout may still hold unread log lines.
    const exited = new Promise<{ code: number | null; at: number }>((resolve) => server.child.once('close', (code) => resolve({ code, at: performance.now() })));

    // A request accepted before the signal whose body is still arriving after it.
    let finishUpload: () => void = () => undefined;
    const uploadAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const halfUploaded = request(uploadAgent, url, { ...tokenRequest, upload: new Promise<void>((resolve) => (finishUpload = resolve)) });

    // Keep-alive clients, each on one socket, sending one request after another until refused.
    const outcomesOf: Outcome[][] = Array.from({ length: 4 }, () => []);
    const countOutcomes = () => outcomesOf.reduce((sum, outcomes) => sum + outcomes.length, 0);
    const clients = outcomesOf.map(async (outcomes, client) => {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      try {
        for (let i = 0; countOutcomes() < 400; i += 1) {
          const outcome = await request(agent, url, (client + i) % 2 ? tokenRequest : listRequest);
          outcomes.push(outcome);
          if (outcome.kind === 'error') break;
        }
      } finally {
        agent.destroy();
      }
    });

    while (countOutcomes() < 60) await sleep(5);
    server.child.kill('SIGTERM');
    const signalledAt = performance.now();
    // Finish the upload only once the drain has begun: the server answers with Connection: close
    // only while draining, so the first such answer to a keep-alive client is the evidence.
    const hasDrainBegun = () => outcomesOf.some((outcomes) => outcomes.some((outcome) => outcome.kind === 'response' && outcome.connection === 'close'));
    for (const deadline = performance.now() + 5_000; !hasDrainBegun() && performance.now() < deadline; ) await sleep(5);
    const drainHadBegun = hasDrainBegun();
    finishUpload();
    const upload = await halfUploaded;
    uploadAgent.destroy();

    let giveUp: NodeJS.Timeout | undefined;
    const exit = await Promise.race([exited, new Promise<undefined>((resolve) => (giveUp = setTimeout(() => resolve(undefined), 15_000)))]);
    clearTimeout(giveUp);
    await Promise.all(clients);
    expect(exit).toBeDefined(); // else: still serving keep-alive clients 15 s after SIGTERM
    expect(exit?.code).toBe(0);
    expect((exit?.at ?? Infinity) - signalledAt).toBeLessThan(5_000);

    // The half-uploaded request was accepted before the signal and its body finished after the
    // drain had begun: it completes, and the client is told to close.
    expect(drainHadBegun).toBe(true);
    expect(upload).toMatchObject({ kind: 'response', status: 200, connection: 'close' });
    expect(JSON.parse((upload as { body: string }).body).access_token).toEqual(expect.any(String));

    const outcomes = outcomesOf.flat();
    const responses = outcomes.filter((outcome) => outcome.kind === 'response');
    expect(responses.filter((outcome) => outcome.status !== 200)).toEqual([]);
    for (const response of responses) expect(() => JSON.parse(response.body)).not.toThrow();
    // Only a refused new connection is acceptable (nothing was sent on it) ...
    expect(outcomes.filter((outcome) => outcome.kind === 'error' && outcome.code !== 'ECONNREFUSED')).toEqual([]);
    // ... and every client met one only after its last answer had told it to close the connection.
    for (const clientOutcomes of outcomesOf) {
      expect(clientOutcomes.slice(-2)).toEqual([
        expect.objectContaining({ kind: 'response', status: 200, connection: 'close' }),
        expect.objectContaining({ kind: 'error', code: 'ECONNREFUSED', isReusedSocket: false }),
      ]);
    }
    expect(server.stdout()).toContain('"signal":"SIGTERM"');
  });
});
