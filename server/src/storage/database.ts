/**
 * The Knex instance: a pooled `pg` connection when DATABASE_URL is set, else an
 * embedded PostgreSQL (PGlite) kept in DATA_DIR. Both run the same migrations and the
 * same queries.
 */
import fs from 'node:fs';
import path from 'node:path';
import knexFactory, { type Knex } from 'knex';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import type { Logger } from 'pino';
import type { PoolMode } from '../config.js';
import { migrations, type Migration } from '../../migrations/index.js';
import { restrictToOwner } from './data-dir.js';

// bigint (count(*), bigserial) as a JS number: our counters stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

export interface Database {
  readonly knex: Knex;
  readonly isEmbedded: boolean;
  /** `transaction`: behind a transaction-mode pooler; see DatabaseOptions.poolMode. */
  readonly poolMode: PoolMode;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  readonly databaseUrl: string | undefined;
  /** Embedded only: where PGlite keeps its files; undefined = in memory. */
  readonly dataDir?: string;
  readonly poolMax?: number;
  /**
   * DATABASE_POOL_MODE. `transaction` (PgBouncer, RDS Proxy): consecutive statements may
   * reach different server connections, so statements are unnamed (storage/prepared.ts)
   * and locks are transaction-scoped (migrateToLatest). Default `session`.
   */
  readonly poolMode?: PoolMode;
  /** Where Knex's own warnings go (it writes to the console otherwise). */
  readonly logger?: Pick<Logger, 'warn' | 'debug'>;
}

function knexLog(logger: DatabaseOptions['logger']): Knex.Config['log'] {
  const warn = (message: unknown) => logger?.warn({ detail: String(message) }, 'database client');
  return { warn, error: warn, deprecate: warn, debug: (message: unknown) => logger?.debug({ detail: String(message) }, 'database client') };
}

export function openDatabase(options: DatabaseOptions): Database {
  if (options.databaseUrl) {
    const knex = knexFactory({
      client: 'pg',
      connection: { connectionString: options.databaseUrl, application_name: 'sentryagent-idp' },
      pool: { min: 0, max: options.poolMax ?? 16 },
      // Fail fast while the database is down: the request answers 503 instead of hanging.
      acquireConnectionTimeout: 5_000,
      log: knexLog(options.logger),
    });
    return { knex, isEmbedded: false, poolMode: options.poolMode ?? 'session', close: () => knex.destroy() };
  }
  if (!options.dataDir) {
    const knex = knexFactory({ client: ClientPgLite, dialect: 'postgres', connection: {}, log: knexLog(options.logger) });
    return { knex, isEmbedded: true, poolMode: 'session', close: () => knex.destroy() };
  }
  // DATA_DIR exists by now (storage/data-dir.ts); a recursive mkdir could spin where the kernel refuses one.
  const filename = path.join(options.dataDir, 'pgdata');
  if (!fs.existsSync(filename)) fs.mkdirSync(filename, { mode: 0o700 });
  // PGlite chooses its files' modes itself (storage/data-dir.ts): made owner-only once it
  // has opened them, before the first query, and again once it has closed them.
  const restrict = () => restrictToOwner(filename, `DATA_DIR ${options.dataDir}`);
  const knex = knexFactory({ client: ownerOnlyPgLite(restrict), dialect: 'postgres', connection: { filename }, log: knexLog(options.logger) });
  return {
    knex,
    isEmbedded: true,
    poolMode: 'session',
    close: async () => {
      await knex.destroy();
      restrict();
    },
  };
}

/** knex-pglite, with `afterOpen` run when PGlite has opened its files (PGlite is one connection). */
function ownerOnlyPgLite(afterOpen: () => void): typeof Knex.Client {
  const PgLiteClient = ClientPgLite as unknown as new (config: Knex.Config) => { acquireRawConnection(): Promise<unknown> };
  class OwnerOnlyPgLiteClient extends PgLiteClient {
    override async acquireRawConnection(): Promise<unknown> {
      const connection = await super.acquireRawConnection();
      afterOpen();
      return connection;
    }
  }
  return OwnerOnlyPgLiteClient as unknown as typeof Knex.Client;
}

const migrationSource: Knex.MigrationSource<Migration> = {
  getMigrations: async () => [...migrations],
  getMigrationName: (migration) => migration.name,
  getMigration: async (migration) => migration,
};

// Any constant shared by every instance: the key of the advisory lock that serialises
// migrations when several instances start at once.
const MIGRATION_LOCK_KEY = 7_242_001;

export async function migrateToLatest(db: Database): Promise<string[]> {
  if (db.isEmbedded) {
    const [, applied] = await db.knex.migrate.latest({ migrationSource });
    return applied as string[];
  }
  // Knex's own lock row refuses (rather than waits for) a concurrent migrator, and its
  // table creation races; an advisory lock makes the second instance wait.
  if (db.poolMode === 'transaction') return migrateUnderTransactionLock(db);
  const client = db.knex.client as Knex.Client & {
    acquireConnection(): Promise<pg.PoolClient>;
    releaseConnection(connection: pg.PoolClient): Promise<void>;
  };
  const connection = await client.acquireConnection();
  try {
    await connection.query('select pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    const [, applied] = await db.knex.migrate.latest({ migrationSource });
    return applied as string[];
  } finally {
    await connection.query('select pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await client.releaseConnection(connection);
  }
}

/**
 * Behind a transaction-mode pooler a session lock would stay on whichever server
 * connection took it. Instead one transaction holds a transaction-scoped lock (the pooler
 * keeps its server connection for it) while the migrations run on other connections, as
 * the session lock's connection does in session mode.
 */
async function migrateUnderTransactionLock(db: Database): Promise<string[]> {
  return db.knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(?)', [MIGRATION_LOCK_KEY]);
    const [, applied] = await db.knex.migrate.latest({ migrationSource });
    return applied as string[];
  });
}

export async function migrateDown(db: Database): Promise<string[]> {
  const [, reverted] = await db.knex.migrate.rollback({ migrationSource });
  return reverted as string[];
}

const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '53300', // too_many_connections
]);

/**
 * True when an error means the database cannot be reached (answer 503), not a bug. Judged
 * by shape, not `instanceof Error`: socket errors are made by Node's own realm, which is
 * not the application's under a VM loader such as Jest's, and were answered 500 there.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (typeof error !== 'object' || error === null) return false;
  const { code, name, message } = error as { code?: unknown; name?: unknown; message?: unknown };
  if (typeof code === 'string' && (UNAVAILABLE_CODES.has(code) || code.startsWith('08'))) return true;
  if (name === 'KnexTimeoutError') return true;
  return (
    typeof message === 'string' &&
    /Connection terminated|connection is insecure|Client has encountered a connection error|terminating connection/i.test(message)
  );
}

/** Resolves when the database answers a trivial query (readiness). */
export async function pingDatabase(knex: Knex): Promise<void> {
  await knex.raw('select 1');
}
