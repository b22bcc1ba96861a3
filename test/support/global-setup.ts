/**
 * Once per jest run, before any test file:
 * - builds the server, for the tests that run it as a real process (`npm start`, the CLI).
 *   `npm run build` also marks the build fresh, so that bin/sentryagent-idp.js does not
 *   compile again (and say so on stderr) in the middle of a test;
 * - migrates one template database, of which each test file that asks for a migrated
 *   database gets a copy (see database.ts) instead of running the migrations itself: on
 *   PostgreSQL a template database (`create database … template …`), embedded a PGlite
 *   DATA_DIR that the file copies (a new in-memory PGlite spends seconds in initdb).
 * Their names reach the test workers through the environment (workers start after this);
 * global-teardown.ts removes them.
 *
 * Node, not jest, resolves this file's imports: it cannot import the TypeScript sources,
 * so it uses the build it has just made.
 */
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import knexFactory from 'knex';

/** The migrated PostgreSQL template database's name (DATABASE_URL set). */
export const TEMPLATE_DATABASE_ENV = 'IDP_TEST_TEMPLATE_DATABASE';
/** The migrated embedded DATA_DIR to copy (no DATABASE_URL). */
export const TEMPLATE_DATA_DIR_ENV = 'IDP_TEST_TEMPLATE_DATA_DIR';
/** This run's temporary directory: the embedded template, the test files' copies of it, the CLI tests' DATA_DIRs. */
export const TEST_ROOT_ENV = 'IDP_TEST_ROOT';

type DatabaseModule = typeof import('../../server/src/storage/database.js');

async function build(): Promise<void> {
  const { stdout, stderr } = await promisify(execFile)('npm', ['run', '--silent', 'build']).catch((error) => {
    process.stderr.write(`${error.stdout ?? ''}${error.stderr ?? ''}`);
    throw error;
  });
  process.stdout.write(stdout);
  process.stderr.write(stderr);
}

async function postgresTemplate({ openDatabase, migrateToLatest }: DatabaseModule, adminUrl: string): Promise<() => Promise<void>> {
  const name = `idp_template_${crypto.randomBytes(6).toString('hex')}`;
  const admin = knexFactory({ client: 'pg', connection: adminUrl, pool: { min: 0, max: 1 } });
  const drop = async () => {
    await admin.raw(`drop database if exists ${name} with (force)`);
    await admin.destroy();
  };
  await admin.raw(`create database ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  // Every connection to it is closed before the test files copy it: `create database …
  // template` refuses a template that someone is connected to.
  const database = openDatabase({ databaseUrl: url.toString() });
  try {
    await migrateToLatest(database);
  } catch (error) {
    await database.close();
    await drop();
    throw error;
  }
  await database.close();
  process.env[TEMPLATE_DATABASE_ENV] = name;
  return drop;
}

async function embeddedTemplate({ openDatabase, migrateToLatest }: DatabaseModule, root: string): Promise<void> {
  const dataDir = path.join(root, 'template');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  const database = openDatabase({ databaseUrl: undefined, dataDir });
  try {
    await migrateToLatest(database);
  } finally {
    await database.close(); // PGlite shuts down cleanly: the files are a consistent copy
  }
  process.env[TEMPLATE_DATA_DIR_ENV] = dataDir;
}

/** /dev/shm where there is one (Linux): the embedded databases' files go to memory, not to disk. */
function memoryBackedTmpdir(): string {
  try {
    fs.accessSync('/dev/shm', fs.constants.W_OK);
    return '/dev/shm';
  } catch {
    return os.tmpdir();
  }
}

const ROOT_PREFIX = 'sentryagent-jest-';

/** Removes what runs that were killed before their teardown left (in /dev/shm, that is memory). */
function removeLeftovers(base: string): void {
  for (const name of fs.readdirSync(base)) {
    const pid = Number(new RegExp(`^${ROOT_PREFIX}(\\d+)-`).exec(name)?.[1]);
    if (!pid) continue;
    try {
      process.kill(pid, 0); // that run's jest is still alive (or its pid was reused): leave it
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(base, name), { recursive: true, force: true });
    }
  }
}

export default async function globalSetup(): Promise<void> {
  await build();
  const base = memoryBackedTmpdir();
  removeLeftovers(base);
  const root = fs.mkdtempSync(path.join(base, `${ROOT_PREFIX}${process.pid}-`));
  process.env[TEST_ROOT_ENV] = root;
  const removeRoot = async () => fs.rmSync(root, { recursive: true, force: true });
  const database: DatabaseModule = await import(new URL('../../build/server/src/storage/database.js', import.meta.url).href);
  const adminUrl = process.env.DATABASE_URL;
  let dropTemplate = async () => undefined as void;
  try {
    if (adminUrl) dropTemplate = await postgresTemplate(database, adminUrl);
    else await embeddedTemplate(database, root);
  } catch (error) {
    await removeRoot();
    throw error;
  }
  // global-teardown.ts runs in this same process: globals set here are what it can read.
  (globalThis as { idpTestCleanup?: () => Promise<void> }).idpTestCleanup = async () => {
    await dropTemplate();
    await removeRoot();
  };
}
