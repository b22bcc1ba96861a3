/**
 * A PostgreSQL that is not reachable when the server starts (it starts beside the server
 * under a supervisor, or after it): the real process (compiled main.js) stays up, answers
 * `/healthz` 200 and everything else 503 while it retries, serves once the database
 * appears, and gives up with one line after DATABASE_CONNECT_TIMEOUT_SECONDS.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createTestDatabase, isRealPostgres, type TestDatabase } from '../support/database.js';
import { MAIN, watchProcess, type WatchedProcess } from '../support/server-process.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { ADMIN } from '../support/test-server.js';
import { form, send } from '../support/api.js';

// Starting real processes on a busy 2-core machine.
jest.setTimeout(120_000);

const PASSWORD = 'pw-that-must-not-be-logged';

/** A loopback port nothing listens on: connections to it are refused. */
async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const logLines = (output: string) => output.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
const EARLY_PORT = /"port":(\d+)[^\n]*"msg":"accepting connections; not ready until the database is"/;

describe('a database that cannot be reached at start', () => {
  it('answers /healthz 200 and everything else 503 while it retries, then exits 1 with one line after DATABASE_CONNECT_TIMEOUT_SECONDS', async () => {
    const port = await closedPort();
    const server = watchProcess([MAIN], {
      DATABASE_URL: `postgres://idp:${PASSWORD}@127.0.0.1:${port}/idp`,
      DATABASE_CONNECT_TIMEOUT_SECONDS: '3',
    });
    const startedAt = Date.now();
    const url = `http://127.0.0.1:${(await server.waitForStdout(EARLY_PORT))[1]}`;
    expect(await send({ url }, '/healthz')).toMatchObject({ status: 200, body: { status: 'ok' } });
    const readyz = await send({ url }, '/readyz');
    expect(readyz.status).toBe(503);
    expect(readyz.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'The service is starting and not ready yet. Please retry shortly.' });
    expect(readyz.headers.get('retry-after')).toBe('5');
    const token = await send({ url }, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: 'x', client_secret: 'y' }));
    expect(token.status).toBe(503);
    expect(token.body.code).toBe('SERVICE_UNAVAILABLE');
    expect(token.headers.get('retry-after')).toBe('5');

    const code = await server.exited;
    expect(code).toBe(1);
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(3_000);
    expect(server.stderr()).toMatch(
      new RegExp(`^sentryagent-idp: failed to start: the database at 127\\.0\\.0\\.1:${port}/idp could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS=3 \\(\\d+ attempts; last: ECONNREFUSED\\)\n$`),
    );
    const retries = logLines(server.stdout()).filter((line) => line.msg === 'database not reachable; retrying');
    expect(retries.length).toBeGreaterThanOrEqual(2);
    expect(retries[0]).toMatchObject({ level: 40, database: `127.0.0.1:${port}/idp`, attempt: 1, reason: 'ECONNREFUSED', retryInMs: 250 });
    expect(retries[1]).toMatchObject({ attempt: 2, retryInMs: 500 });
    expect(server.stdout() + server.stderr()).not.toContain(PASSWORD);
  });

  it('tries once and exits at once with DATABASE_CONNECT_TIMEOUT_SECONDS=0', async () => {
    const port = await closedPort();
    const server = watchProcess([MAIN], { DATABASE_URL: `postgres://idp@127.0.0.1:${port}/idp`, DATABASE_CONNECT_TIMEOUT_SECONDS: '0' });
    expect(await server.exited).toBe(1);
    expect(server.stderr()).toBe(
      `sentryagent-idp: failed to start: the database at 127.0.0.1:${port}/idp could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS=0 (1 attempt; last: ECONNREFUSED)\n`,
    );
  });
});

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // needs a PostgreSQL to appear behind the proxy

describeWithPostgres('a database that appears after the server has started', () => {
  let testDatabase: TestDatabase;
  let proxy: TcpProxy;
  const servers: WatchedProcess[] = [];
  beforeAll(async () => {
    testDatabase = await createTestDatabase({ migrated: true });
    const target = new URL(testDatabase.url as string);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
  });
  afterAll(async () => {
    for (const server of servers) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await proxy.close();
    await testDatabase.drop();
  });

  const throughProxy = () => {
    const url = new URL(testDatabase.url as string);
    url.host = `127.0.0.1:${proxy.port}`;
    return url.toString();
  };

  for (const workers of ['1', '2']) {
    it(`with WORKERS=${workers}: retries while the link refuses, then migrates, serves and becomes ready`, async () => {
      proxy.cut();
      const server = watchProcess([MAIN], {
        DATABASE_URL: throughProxy(),
        DATABASE_CONNECT_TIMEOUT_SECONDS: '60',
        WORKERS: workers,
        BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId,
        BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret,
      });
      servers.push(server);
      await server.waitForStdout(/"attempt":2,[^\n]*"msg":"database not reachable; retrying"/);
      if (workers === '1') {
        const url = `http://127.0.0.1:${(await server.waitForStdout(EARLY_PORT))[1]}`;
        expect((await send({ url }, '/healthz')).status).toBe(200);
        expect((await send({ url }, '/readyz')).status).toBe(503);
      }
      proxy.restore();
      const [, port] = await server.waitForStdout(/"port":(\d+)[^\n]*"msg":"listening"/);
      const url = `http://127.0.0.1:${port}`;
      expect(logLines(server.stdout()).filter((line) => line.msg === 'database reachable')).toHaveLength(1);
      expect(await send({ url }, '/readyz')).toMatchObject({ status: 200, body: { status: 'ok' } });
      const token = await send({ url }, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: ADMIN.clientSecret }));
      expect(token.status).toBe(200);
      server.child.kill('SIGTERM');
      expect(await server.exited).toBe(0);
    });
  }
});
