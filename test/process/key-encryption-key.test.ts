/**
 * The key-encryption key at start-up, as the real process meets it: required in production,
 * validated, and on the embedded database generated into DATA_DIR (owner-only) at the first
 * start and used from then on.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { kekIdOf } from '../../server/src/keys/key-encryption.js';
import { openDatabase } from '../../server/src/storage/database.js';
import { bearer, form, getToken, send } from '../support/api.js';
import { runCli } from '../support/cli-process.js';
import { runToExit, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';

// Real processes on the embedded database, on a busy 2-core machine.
jest.setTimeout(180_000);

const freshDataDir = useTemporaryDirs('sentryagent-kek-');
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;

function adminOf(server: ServerProcess): { clientId: string; clientSecret: string } {
  const printed = /client_id:\s+(\S+)\s+client_secret:\s+(sk_live_\S+)/.exec(server.stdout());
  if (!printed) throw new Error(`no bootstrap credentials printed:\n${server.stdout()}`);
  return { clientId: printed[1], clientSecret: printed[2] };
}

describe('KEY_ENCRYPTION_KEY at start-up', () => {
  it('is required with NODE_ENV=production: without it the server does not start (one line naming it, exit 2)', async () => {
    const result = await runToExit({ NODE_ENV: 'production', DATABASE_URL: 'postgres://idp@127.0.0.1:9/unused', PORT: '0' });
    expect(result).toMatchObject({
      code: 2,
      stderr:
        'sentryagent-idp: Invalid configuration: KEY_ENCRYPTION_KEY is required with NODE_ENV=production: 32 random bytes in base64, e.g. from `openssl rand -base64 32`\n',
    });
  });

  it('must be 32 bytes in base64: a bad value stops start-up with one line naming it, never repeating it', async () => {
    const bad = Buffer.from('sixteen byte key').toString('base64');
    const result = await runToExit({ DATA_DIR: freshDataDir(), KEY_ENCRYPTION_KEY: bad, PORT: '0' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('sentryagent-idp: Invalid configuration: KEY_ENCRYPTION_KEY must be 32 random bytes in base64, e.g. from `openssl rand -base64 32`\n');
    expect(result.stderr).not.toContain(bad);
  });
});

describe('the embedded default without KEY_ENCRYPTION_KEY', () => {
  const dataDir = freshDataDir();
  const kekFile = path.join(dataDir, 'key-encryption-key');
  afterAll(() => fs.chmodSync(kekFile, 0o600));

  it('generates an owner-only key into DATA_DIR at the first start, encrypts the signing key under it, and uses it after a restart', async () => {
    const first = await startServerProcess({ DATA_DIR: dataDir });
    const admin = adminOf(first);
    const token = await getToken(first, admin.clientId, admin.clientSecret);
    expect(await first.stop()).toBe(0);

    expect(fs.statSync(kekFile).mode & 0o777).toBe(0o600);
    const generated = fs.readFileSync(kekFile, 'utf8');
    const kek = Buffer.from(generated.trim(), 'base64');
    expect(kek).toHaveLength(32);
    const database = openDatabase({ databaseUrl: undefined, dataDir });
    try {
      const rows = await database.knex('signing_keys').select('kid', 'private_jwk', 'kek_id');
      expect(rows).toEqual([{ kid: kidOf(token), private_jwk: null, kek_id: kekIdOf(kek) }]);
    } finally {
      await database.close();
    }

    const second = await startServerProcess({ DATA_DIR: dataDir });
    try {
      expect(fs.readFileSync(kekFile, 'utf8')).toBe(generated);
      const again = await getToken(second, admin.clientId, admin.clientSecret);
      // The same key signs: decrypted with the same KEK.
      expect(kidOf(again)).toBe(kidOf(token));
      expect((await send(second, '/api/v1/token/introspect', bearer(again, form({ token })))).body).toMatchObject({ active: true });
    } finally {
      expect(await second.stop()).toBe(0);
    }
  });

  it('has `keys revoke`, handed to the running server, replace the active key with one under the same KEK and kill its tokens', async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      // An agent of its own, made through the CLI (handed to the server too).
      const agent = (await runCli(['agents', 'create', '--name', 'kek-test', '--scope', 'tokens:read', '--json'], { DATA_DIR: dataDir })).json();
      const { clientId, clientSecret } = (await runCli(['credentials', 'create', agent.agentId, '--json'], { DATA_DIR: dataDir })).json();
      const before = await getToken(server, clientId, clientSecret);
      const revoked = await runCli(['keys', 'revoke', kidOf(before), '--json'], { DATA_DIR: dataDir });
      expect(revoked).toMatchObject({ code: 0, stderr: '' });
      const { replacedBy } = revoked.json();
      const after = await getToken(server, clientId, clientSecret);
      expect(kidOf(after)).toBe(replacedBy);
      expect((await send(server, '/api/v1/token/introspect', bearer(after, form({ token: before })))).body).toEqual({ active: false });
      const kek = Buffer.from(fs.readFileSync(kekFile, 'utf8').trim(), 'base64');
      const listed = (await runCli(['keys', 'list', '--json'], { DATA_DIR: dataDir })).json();
      expect(listed[0]).toMatchObject({ kid: replacedBy, privateKey: 'encrypted', kekId: kekIdOf(kek) });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('refuses a key file that other users can read, naming it (exit 2)', async () => {
    fs.chmodSync(kekFile, 0o644);
    const result = await runToExit({ DATA_DIR: dataDir, PORT: '0' });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      `sentryagent-idp: ${kekFile} cannot be used: the key-encryption key must be a file of this user's that nobody else can read (mode 644); chmod 600 ${kekFile}\n`,
    );
  });
});
