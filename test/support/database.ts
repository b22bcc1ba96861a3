/**
 * A fresh database per test file: on the real PostgreSQL named by DATABASE_URL (what CI
 * runs), a new database created for the file and dropped after it; without
 * DATABASE_URL, an embedded PostgreSQL (PGlite).
 *
 * Empty by default. With `{ migrated: true }` it starts as a copy of the database that
 * global-setup.ts migrated once for the whole run, so that each file does not pay for the
 * migrations (and, embedded, for PGlite's initdb): on PostgreSQL a database created from the
 * template database; embedded, PGlite on a copy of the template DATA_DIR. Whoever opens it
 * still runs migrateToLatest (the server does at every start): a no-op on the copy. The
 * migrations themselves, from an empty database, are tested on empty databases
 * (test/storage/migrations, the CLI's migrate, the server processes).
 *
 * Behind a pooler (scripts/throwaway-pgbouncer.sh, .ci/run): DATABASE_URL still names
 * PostgreSQL itself, where databases are created and dropped (a transaction-mode pooler
 * is no place for `create database`); IDP_TEST_POOLER_URL names the pooler, and each test
 * database's `url`, the one servers under test and `open()` use, goes through it under
 * the same database name. DATABASE_POOL_MODE (`transaction` there) reaches those servers
 * and `open()` as `testPoolMode`.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import knexFactory from 'knex';
import type { PoolMode } from '../../server/src/config.js';
import { migrateToLatest, openDatabase, type Database } from '../../server/src/storage/database.js';
import { TEMPLATE_DATABASE_ENV, TEMPLATE_DATA_DIR_ENV, TEST_ROOT_ENV } from './global-setup.js';

export interface TestDatabase {
  /** The URL of this file's own database, or undefined when embedded. */
  readonly url: string | undefined;
  open(poolMax?: number): Database;
  drop(): Promise<void>;
}

export interface TestDatabaseOptions {
  /** Start from a copy of the migrated template (global-setup.ts) instead of an empty database. */
  readonly migrated?: boolean;
}

export const isRealPostgres = Boolean(process.env.DATABASE_URL);

/** The pooler in front of DATABASE_URL's PostgreSQL that test servers connect through, if any. */
export const POOLER_URL_ENV = 'IDP_TEST_POOLER_URL';

/** DATABASE_POOL_MODE of this run, for the servers and databases opened by tests (config.ts validates it there). */
export const testPoolMode: PoolMode = process.env.DATABASE_POOL_MODE === 'transaction' ? 'transaction' : 'session';

/** Whether test servers reach PostgreSQL through a pooler (IDP_TEST_POOLER_URL). */
export const isBehindPooler = Boolean(process.env[POOLER_URL_ENV]);

/** The URL of database `name`: through the pooler when there is one, else on PostgreSQL directly. */
function urlOfDatabase(adminUrl: string, name: string): string {
  const url = new URL(adminUrl);
  const pooler = process.env[POOLER_URL_ENV];
  if (pooler) {
    const { hostname, port } = new URL(pooler);
    url.hostname = hostname;
    url.port = port;
  }
  url.pathname = `/${name}`;
  return url.toString();
}

export async function createTestDatabase(options: TestDatabaseOptions = {}): Promise<TestDatabase> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) return options.migrated ? embeddedCopyOfTemplate() : embeddedInMemory();
  const name = `idp_test_${crypto.randomBytes(6).toString('hex')}`;
  const template = options.migrated ? process.env[TEMPLATE_DATABASE_ENV] : undefined;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw(template ? `create database ${name} template ${template}` : `create database ${name}`);
  const url = urlOfDatabase(adminUrl, name);
  return {
    url,
    open: (poolMax?: number) => openDatabase({ databaseUrl: url, poolMax, poolMode: testPoolMode }),
    drop: async () => {
      await admin.raw(`drop database if exists ${name} with (force)`);
      await admin.destroy();
    },
  };
}

/** A new, empty in-memory PGlite at each open(). */
function embeddedInMemory(): TestDatabase {
  return { url: undefined, open: () => openDatabase({ databaseUrl: undefined }), drop: async () => undefined };
}

/**
 * A new directory in this run's temporary directory (in memory, /dev/shm, where the machine
 * has one: see global-setup.ts), for embedded databases' files. The caller removes it.
 */
export function temporaryDataDir(prefix: string): string {
  return fs.mkdtempSync(path.join(process.env[TEST_ROOT_ENV] ?? os.tmpdir(), prefix));
}

/** PGlite on this file's own copy of the migrated template DATA_DIR: opened once at a time. */
function embeddedCopyOfTemplate(): TestDatabase {
  const template = process.env[TEMPLATE_DATA_DIR_ENV];
  if (!template) return embeddedInMemory(); // no global setup ran: the opener migrates
  const dataDir = temporaryDataDir('db-');
  fs.cpSync(path.join(template, 'pgdata'), path.join(dataDir, 'pgdata'), { recursive: true });
  let isOpen = false;
  return {
    url: undefined,
    open: () => {
      // Two PGlite instances on one directory would corrupt it; instances that share the
      // database share the handle (test-server.ts).
      if (isOpen) throw new Error(`the embedded test database in ${dataDir} is already open`);
      const database = openDatabase({ databaseUrl: undefined, dataDir });
      isOpen = true;
      return {
        ...database,
        close: async () => {
          await database.close();
          isOpen = false;
        },
      };
    },
    drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }),
  };
}

/**
 * For a test file that works on the schema directly: its own database, migrated before its
 * tests and dropped after them. Returns the open database (call it inside a test or hook).
 */
export function useMigratedDatabase(): () => Database {
  let testDatabase: TestDatabase | undefined;
  let database: Database | undefined;
  beforeAll(async () => {
    testDatabase = await createTestDatabase({ migrated: true });
    database = testDatabase.open();
    await migrateToLatest(database);
  });
  afterAll(async () => {
    await database?.close();
    await testDatabase?.drop();
  });
  return () => {
    if (!database) throw new Error('the migrated database is opened in beforeAll');
    return database;
  };
}
