/**
 * WORKERS=2: the real process (compiled main.js) runs a primary and two servers on one
 * port and one PostgreSQL database. Generated credentials are printed once, both workers
 * serve and share keys and revocations, and SIGTERM drains both before the exit.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createTestDatabase, isRealPostgres, testPoolMode, type TestDatabase } from '../support/database.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { bearer, form, send } from '../support/api.js';

// Starting real processes on a busy 2-core machine; above server-process.ts's own 90 s start timer.
jest.setTimeout(120_000);

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // the embedded database is one process's

describeWithPostgres('WORKERS=2', () => {
  let testDatabase: TestDatabase;
  let server: ServerProcess;
  beforeAll(async () => {
    testDatabase = await createTestDatabase();
    server = await startServerProcess({ DATABASE_URL: testDatabase.url, DATABASE_POOL_MODE: testPoolMode, WORKERS: '2', RATE_LIMIT_PER_MINUTE: '0' });
  });
  afterAll(async () => {
    if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await testDatabase.drop();
  });

  it('prepares the database once, prints the generated credentials once, and starts both workers on one port', async () => {
    await logged(() => server.stdout().match(/"msg":"worker listening"/g)?.length === 2);
    const out = server.stdout();
    expect(out.match(/client_secret:/g)).toHaveLength(1);
    const logLines = out.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
    const port = new URL(server.url).port;
    expect(logLines.filter((line) => line.msg === 'worker listening').map((line) => String(line.port))).toEqual([port, port]);
    expect(logLines.filter((line) => line.msg === 'listening')).toEqual([expect.objectContaining({ workers: 2, port: Number(port) })]);
    expect(logLines.filter((line) => line.msg === 'migrations applied')).toHaveLength(1);
  });

  it('serves from both workers, each honouring what the other issued and revoked', async () => {
    const [, clientId, clientSecret] = /client_id:\s+(\S+)\s+client_secret:\s+(sk_live_\S+)/.exec(server.stdout()) as RegExpExecArray;
    // Concurrent requests open several connections, which the primary hands to the workers in turn.
    const grants = await Promise.all(
      Array.from({ length: 12 }, () => send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }))),
    );
    expect(grants.map((reply) => reply.status)).toEqual(Array(12).fill(200));
    const [revoked, ...live] = grants.map((reply) => reply.body.access_token as string);
    expect((await send(server, '/api/v1/token/revoke', bearer(live[0], form({ token: revoked })))).status).toBe(200);
    const checks = await Promise.all(
      live.flatMap((token, i) => [
        send(server, '/api/v1/token/introspect', bearer(token, form({ token: revoked }))),
        send(server, '/api/v1/token/introspect', bearer(token, form({ token: live[(i + 1) % live.length] }))),
      ]),
    );
    checks.forEach((reply, i) => expect(reply.body).toEqual(i % 2 === 0 ? { active: false } : expect.objectContaining({ active: true, sub: clientId })));
    // 35 requests (12 grants, 1 revocation, 22 introspections), one log line each: 35 matches split stdout into 36 parts.
    await logged(() => server.stdout().split('"route":"/api/v1/token').length > 35);
    const servedBy = new Set(
      server
        .stdout()
        .split('\n')
        .filter((line) => line.includes('"route":"/api/v1/token'))
        .map((line) => JSON.parse(line).pid),
    );
    expect(servedBy.size).toBe(2);
  });

  it('drains both workers on SIGTERM and exits 0', async () => {
    await send(server, '/healthz');
    expect(await server.stop()).toBe(0);
    const out = server.stdout();
    expect(out).toContain('"msg":"shutting down: workers finish their in-flight requests"');
    expect(out.match(/"msg":"shutting down: finishing in-flight requests"/g)).toHaveLength(2);
  });
});

/** Workers write their logs in batches, at the latest once a second: wait for them. */
async function logged(isThere: () => boolean): Promise<void> {
  for (const deadline = Date.now() + 5_000; !isThere() && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
}
