/**
 * Whole server instances for integration tests: real HTTP on an ephemeral loopback port,
 * a real database (see database.ts: a server's own starts as a copy of the migrated
 * template), the bootstrap admin with known credentials, and every log line captured so
 * tests can assert what was (never) logged.
 */
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import type { Clock } from '../../server/src/clock.js';
import { startServer, type RunningServer } from '../../server/src/server.js';
import type { Resolver } from '../../server/src/egress/egress-guard.js';
import { loadKeyRing } from '../../server/src/keys/key-ring.js';
import { SigningKeyService } from '../../server/src/keys/signing-key-service.js';
import type { Database } from '../../server/src/storage/database.js';
import { createTestDatabase, testPoolMode, type TestDatabase } from './database.js';

export const ADMIN = Object.freeze({
  clientId: '00000000-0000-4000-8000-00000000a0a0',
  clientSecret: 'sk_live_test-bootstrap-admin-secret-0123456789',
});

/** The key-encryption key of test servers (KEY_ENCRYPTION_KEY); `env: { KEY_ENCRYPTION_KEY: '' }` runs without one. */
export const TEST_KEK = Buffer.alloc(32, 7).toString('base64');

export interface TestServer extends RunningServer {
  readonly config: Config;
  readonly logs: string[];
  readonly testDatabase: TestDatabase;
  stop(): Promise<void>;
}

export interface TestServerOptions {
  readonly env?: Record<string, string>;
  /** Share a database with another instance (multi-instance tests). */
  readonly shareWith?: TestServer;
  /** Run on this real-PostgreSQL test database and leave dropping it to the caller, so that
   * an instance can stop and a new one start on the same data (restart tests). */
  readonly testDatabase?: TestDatabase;
  /** The server's time source (test/support/clock.ts); the system clock by default. */
  readonly clock?: Clock;
  /** How the server's outbound fetches resolve names (the egress guard still checks every answer). */
  readonly resolve?: Resolver;
}

/** The operator's signing-key service on a test server's database, with the server's key-encryption keys. */
export function keyServiceOf(server: TestServer): SigningKeyService {
  const { ring } = loadKeyRing(server.config);
  return new SigningKeyService({ knex: server.deps.knex, clock: server.deps.clock, keyRing: () => ring });
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const testDatabase = options.shareWith?.testDatabase ?? options.testDatabase ?? (await createTestDatabase({ migrated: true }));
  const config = loadConfig({
    PORT: '0',
    PUBLIC_URL: 'http://idp.test',
    BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId,
    BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret,
    RATE_LIMIT_PER_MINUTE: '0',
    MONTHLY_TOKEN_LIMIT: '0',
    LOG_LEVEL: 'trace',
    KEY_ENCRYPTION_KEY: TEST_KEK,
    ...(testDatabase.url ? { DATABASE_URL: testDatabase.url, DATABASE_POOL_MODE: testPoolMode } : {}),
    ...options.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  // The embedded database is in memory: instances that share it share the handle.
  const database: Database | undefined = testDatabase.url ? undefined : options.shareWith?.database ?? testDatabase.open();
  const server = await startServer(config, {
    logger: createLogger(config.logLevel, sink),
    database,
    clock: options.clock,
    resolve: options.resolve,
    idleGraceMs: 0, // tests close servers with idle keep-alive sockets of their own; the grace is covered by test/reliability/sigterm
  });
  const isDatabaseOwner = !options.shareWith && !options.testDatabase;
  return {
    ...server,
    config,
    logs,
    testDatabase,
    stop: async () => {
      await server.close();
      if (database && isDatabaseOwner) await database.close();
      if (isDatabaseOwner) await testDatabase.drop();
    },
  };
}
