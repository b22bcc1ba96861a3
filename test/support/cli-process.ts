/**
 * The operator CLI as operators run it: the compiled build behind bin/sentryagent-idp.js, in a
 * child process whose environment holds only PATH and what the test passes. `cliDatabase()`
 * gives each test file its own database: a new PostgreSQL database when DATABASE_URL is set,
 * else an embedded one in a temporary DATA_DIR. `startServerOn` runs the server on the same
 * database, in process (stop it before the next CLI call when the database is embedded:
 * PGlite is single-process).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { loadConfig } from '../../server/src/config.js';
import { createLogger } from '../../server/src/logger.js';
import { startServer, type RunningServer } from '../../server/src/server.js';
import { createTestDatabase, temporaryDataDir, testPoolMode } from './database.js';
import { TEST_KEK } from './test-server.js';
import type { Caller } from '../../server/src/authorization/caller.js';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import type { TestServer } from './test-server.js';

export const CLI = 'bin/sentryagent-idp.js';
/** An embedded database costs seconds per CLI run (PGlite opens its files each time). */
export const CLI_TEST_TIMEOUT_MS = process.env.DATABASE_URL ? 60_000 : 180_000;

export interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** stdout parsed as JSON (for --json runs). */
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

export function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 60_000): Promise<CliResult> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sentryagent-idp ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, json: () => JSON.parse(stdout) });
    });
  });
}

export interface CliDatabase {
  /** DATABASE_URL or DATA_DIR: the configuration the CLI and the server share. */
  readonly env: Record<string, string>;
  readonly isEmbedded: boolean;
  drop(): Promise<void>;
}

export async function cliDatabase(): Promise<CliDatabase> {
  const testDatabase = await createTestDatabase();
  // As in production: the CLI and the server share the key-encryption key (embedded, it is generated into DATA_DIR).
  if (testDatabase.url) return { env: { DATABASE_URL: testDatabase.url, DATABASE_POOL_MODE: testPoolMode, KEY_ENCRYPTION_KEY: TEST_KEK }, isEmbedded: false, drop: () => testDatabase.drop() };
  const dataDir = temporaryDataDir('sentryagent-cli-');
  return { env: { DATA_DIR: dataDir }, isEmbedded: true, drop: async () => fs.rmSync(dataDir, { recursive: true, force: true }) };
}

/** `sentryagent-idp serve` as a child process, resolved once it logs that it listens. */
export function startCliServer(env: Record<string, string>): Promise<{ url: string; stop(): Promise<number | null> }> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { PATH: process.env.PATH, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // 'close', not 'exit': at 'exit' the child's output may still be unread (the error below shows it).
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let out = '';
  return new Promise((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const listening = /"port":(\d+).*"msg":"listening"/.exec(out);
      if (listening) resolve({ url: `http://127.0.0.1:${listening[1]}`, stop: () => (child.kill('SIGTERM'), exited) });
    });
    void exited.then((code) => reject(new Error(`sentryagent-idp serve exited with ${code}:\n${out}`)));
  });
}

export function startServerOn(database: CliDatabase, env: Record<string, string> = {}): Promise<RunningServer> {
  const config = loadConfig({ PORT: '0', PUBLIC_URL: 'http://idp.test', RATE_LIMIT_PER_MINUTE: '0', MONTHLY_TOKEN_LIMIT: '0', ...database.env, ...env });
  return startServer(config, { logger: createLogger('silent', { write: () => undefined }), idleGraceMs: 0 });
}

export interface InProcessRun {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
  json(): any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** A CLI command run in this process, on a test server's database, as `caller`; `--json` anywhere asks for JSON. */
export async function runInProcess(server: TestServer, caller: Caller, argv: readonly string[]): Promise<InProcessRun> {
  const { output, printed } = bufferedOutput(argv.includes('--json'));
  const exitCode = await runCommandOn(
    argv.filter((arg) => arg !== '--json'),
    server.config,
    server.database,
    output,
    { caller, isSchemaCurrent: true, clock: server.deps.clock },
  );
  const { stdout, stderr } = printed();
  return { exitCode, stdout, stderr, json: () => JSON.parse(stdout) };
}
