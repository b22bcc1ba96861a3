import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { migrations } from '../../server/migrations/index.js';
import { bearer, send } from '../support/api.js';
import { ADMIN } from '../support/test-server.js';
import { CLI, CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, startCliServer, startServerOn, type CliDatabase } from '../support/cli-process.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

let database: CliDatabase;
const cli = (...args: string[]) => runCli(args, database.env);
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;

beforeAll(async () => {
  database = await cliDatabase();
});
afterAll(() => database.drop());

describe('sentryagent-idp usage and errors', () => {
  it('prints the usage: exit 2 without a command, 0 when asked for it', async () => {
    const bare = await runCli([], {});
    expect(bare.code).toBe(2);
    expect(bare.stdout).toMatch(/^usage: sentryagent-idp <command>/);
    for (const command of ['serve', 'migrate', 'keys rotate', 'keys rewrap', 'keys revoke', 'agents create', 'agents decommission', 'credentials revoke', 'policies add', 'policies remove', 'audit verify', 'console']) {
      expect(bare.stdout).toContain(`\n  ${command} `);
    }
    expect(await runCli(['--help'], {})).toMatchObject({ code: 0, stdout: bare.stdout });
    const commandHelp = await runCli(['policies', 'add', '--help'], {});
    expect(commandHelp.code).toBe(0);
    expect(commandHelp.stdout).toMatch(/^usage: sentryagent-idp policies add --repository <owner\/name> \[--agent <agentId>\]/);
  });

  it('shows every command\'s own usage with --help, exit 0, without touching the database', async () => {
    const listed = (await runCli(['--help'], {})).stdout.split('\n').filter((line) => /^ {2}\S/.test(line));
    // 2 server, 4 keys, 8 orgs, 7 agents, 3 credentials, 4 policies, 7 federation partners, 4 federation bindings, federation evaluate, 6 webhooks, 1 audit command and console.
    expect(listed).toHaveLength(48);
    for (const line of listed) {
      const [, name, summary] = /^ {2}(.+?) {2,}(.+)$/.exec(line) ?? [];
      // A database nobody can reach: --help must not need one.
      const help = await runCli([...name.split(' '), '--help'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none' });
      expect({ name, code: help.code, stderr: help.stderr }).toEqual({ name, code: 0, stderr: '' });
      expect(help.stdout).toMatch(new RegExp(`^usage: sentryagent-idp ${name}( |\n)`));
      expect(help.stdout).toContain(`\n  ${summary}\n`);
    }
  });

  it('refuses unknown commands, unknown options and missing arguments with exit 2', async () => {
    const unknown = await runCli(['agents', 'fly'], {});
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^sentryagent-idp: unknown command "agents fly"\nusage: sentryagent-idp agents <command>/);
    const option = await runCli(['agents', 'list', '--colour', 'red'], {});
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/^sentryagent-idp: unknown option --colour\nusage: sentryagent-idp agents list \[--status/);
    const missing = await runCli(['credentials', 'revoke', '11111111-1111-4111-8111-111111111111'], {});
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringMatching(/^sentryagent-idp: expected <agentId> <credentialId>\n/) });
  });

  it('stops with exit 2 and a line naming the variable when the configuration is bad', async () => {
    const result = await runCli(['agents', 'list'], { ...database.env, SIGNING_ALG: 'HS256' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('sentryagent-idp: Invalid configuration: SIGNING_ALG must be one of RS256, ES256, EdDSA (got "HS256")\n');
    const json = await runCli(['agents', 'list', '--json'], { DATABASE_URL: 'mysql://nope' });
    expect(JSON.parse(json.stderr)).toEqual({ error: 'configuration', message: 'Invalid configuration: DATABASE_URL must be a postgres:// or postgresql:// URL' });
  });

  it('exits 1 with a clear line when the database cannot be reached', async () => {
    const result = await runCli(['agents', 'list'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:9/none' });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^sentryagent-idp: cannot reach the database: .*ECONNREFUSED/);
  });
});

describe('sentryagent-idp migrate, keys and serve', () => {
  it('migrates an empty database, reports nothing to do after, and reverts with --down', async () => {
    const all = migrations.map((migration) => migration.name);
    expect(await cli('migrate')).toMatchObject({ code: 0, stdout: `applied: ${all.join(', ')}\n` });
    expect(await cli('migrate')).toMatchObject({ code: 0, stdout: 'nothing to do\n' });
    expect((await cli('migrate', '--down', '--json')).json()).toEqual({ reverted: [...all].reverse() });
    expect((await cli('migrate', '--json')).json()).toEqual({ applied: all });
  });

  it('rotates the signing key: the server signs with the new one and still publishes the old one', async () => {
    expect((await cli('keys', 'list')).stdout).toBe('no signing keys yet (the server creates one at its first start)\n');
    const env = { BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId, BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret };
    let server = await startServerOn(database, env);
    const before = (await send(server, '/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid);
    await server.close();

    const rotated = await cli('keys', 'rotate', '--json');
    expect(rotated.code).toBe(0);
    expect(rotated.json()).toEqual({ kid: expect.any(String), alg: 'RS256', retired: before });
    const listed = (await cli('keys', 'list', '--json')).json();
    // Embedded, the key-encryption key was generated into DATA_DIR; on PostgreSQL it is KEY_ENCRYPTION_KEY.
    const stored = { privateKey: 'encrypted', kekId: expect.any(String) };
    expect(listed).toEqual([
      { kid: rotated.json().kid, alg: 'RS256', createdAt: expect.any(String), retiredAt: null, revokedAt: null, ...stored },
      { kid: before[0], alg: 'RS256', createdAt: expect.any(String), retiredAt: expect.any(String), revokedAt: null, ...stored },
    ]);
    expect((await cli('keys', 'list')).stdout).toMatch(
      new RegExp(`^KID +ALG +CREATED +STATE +PRIVATE KEY\\n${rotated.json().kid} +RS256 +\\S+ +active +encrypted \\(KEK [\\w-]{16}\\)\\n`),
    );

    server = await startServerOn(database, env);
    try {
      const jwks = (await send(server, '/.well-known/jwks.json')).body.keys.map((key: { kid: string }) => key.kid);
      expect(jwks.sort()).toEqual([rotated.json().kid, before[0]].sort());
      const token = (await send(server, '/api/v1/token', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${ADMIN.clientId}&client_secret=${ADMIN.clientSecret}` })).body.access_token;
      expect(kidOf(token)).toBe(rotated.json().kid);
      const audit = await send(server, '/api/v1/audit?type=signing_key.rotated', bearer(token));
      expect(audit.body.data).toEqual([expect.objectContaining({ actor: 'operator', data: { kid: rotated.json().kid, retired: before } })]);
    } finally {
      await server.close();
    }
  });

  it('rewraps (nothing to do when every key is under the KEK already) and revokes a key, naming an unknown kid with exit 3', async () => {
    const rewrap = await cli('keys', 'rewrap');
    expect(rewrap).toMatchObject({ code: 0, stderr: '', stdout: expect.stringMatching(/^key-encryption key: [\w-]{16}\nre-encrypted: none \(every key was already under it\)\nwebhook endpoints whose secrets were re-encrypted: 0\n$/) });
    const unknown = await cli('keys', 'revoke', 'no-such-kid');
    expect(unknown).toMatchObject({ code: 3, stdout: '', stderr: 'sentryagent-idp: No signing key has kid no-such-kid.\n' });
    const [active] = (await cli('keys', 'list', '--json')).json();
    // A kid is a base64url thumbprint: one in 64 begins with '-', which only `--` keeps from reading as an option.
    const revoked = await cli('keys', 'revoke', '--', active.kid);
    expect(revoked.code).toBe(0);
    expect(revoked.stdout).toMatch(new RegExp(`^revoked: ${active.kid}\nit was the active key; new active key: [\\w-]+\n`));
  });

  it('serves the IdP as `npm start` does, and stops cleanly on SIGTERM', async () => {
    const server = await startCliServer({ ...database.env, LOG_LEVEL: 'info' });
    const health = await send(server, '/readyz');
    expect(health).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(await server.stop()).toBe(0);
  });
});

describe('bin/sentryagent-idp.js in a checkout that was never built', () => {
  let checkout = '';
  beforeAll(() => {
    checkout = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-checkout-'));
    for (const entry of ['bin', 'server', 'package.json', 'tsconfig.json', 'tsconfig.build.json']) {
      fs.cpSync(entry, path.join(checkout, entry), { recursive: true });
    }
    fs.symlinkSync(path.resolve('node_modules'), path.join(checkout, 'node_modules'));
  });
  afterAll(() => fs.rmSync(checkout, { recursive: true, force: true }));
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [CLI, ...args], { cwd: checkout, env: { PATH: process.env.PATH }, encoding: 'utf8', timeout: 170_000 });
  const COMPILING = 'sentryagent-idp: compiling the server first (build/ is missing or older than the sources)…\n';

  it('compiles first (saying so on stderr only), then runs the build until a source changes', () => {
    const first = run('keys', 'list', '--help');
    expect({ status: first.status, stderr: first.stderr }).toEqual({ status: 0, stderr: COMPILING });
    expect(first.stdout).toMatch(/^usage: sentryagent-idp keys list\n/);
    expect(fs.existsSync(path.join(checkout, 'build/server/src/cli/main.js'))).toBe(true);

    expect(run('--help')).toMatchObject({ status: 0, stderr: '' });

    const later = new Date(Date.now() + 60_000);
    fs.utimesSync(path.join(checkout, 'server/src/config.ts'), later, later);
    expect(run('--help')).toMatchObject({ status: 0, stderr: COMPILING });
    expect(run('--help')).toMatchObject({ status: 0, stderr: '' });
  }, 180_000);
});
