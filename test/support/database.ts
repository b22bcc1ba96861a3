/**
 * A fresh database per test file: on the real PostgreSQL named by DATABASE_URL (what CI
 * runs), a new database created for the file and dropped after it; without
 * DATABASE_URL, an in-memory embedded PostgreSQL.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll } from '@jest/globals';
import knexFactory from 'knex';
import { migrateToLatest, openDatabase, type Database } from '../../server/src/storage/database.js';

export interface TestDatabase {
  /** The URL of this file's own database, or undefined when embedded. */
  readonly url: string | undefined;
  open(poolMax?: number): Database;
  drop(): Promise<void>;
}

export const isRealPostgres = Boolean(process.env.DATABASE_URL);

export async function createTestDatabase(): Promise<TestDatabase> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    return { url: undefined, open: () => openDatabase({ databaseUrl: undefined }), drop: async () => undefined };
  }
  const name = `idp_test_${crypto.randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  await admin.raw(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    open: (poolMax?: number) => openDatabase({ databaseUrl: url.toString(), poolMax }),
    drop: async () => {
      await admin.raw(`drop database if exists ${name} with (force)`);
      await admin.destroy();
    },
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
    testDatabase = await createTestDatabase();
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
