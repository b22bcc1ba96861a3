import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { runToExit, startServerProcess } from '../support/server-process.js';
import { bearer, form, send } from '../support/api.js';
import { looseModes } from '../support/file-modes.js';

// Starting real processes on a busy 2-core machine; above server-process.ts's own 90 s start timer.
jest.setTimeout(120_000);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-embedded-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe('npm start on the embedded database', () => {
  let clientId = '';
  let clientSecret = '';
  let firstToken = '';

  it('prints generated bootstrap credentials once, serves, and exits cleanly on SIGTERM', async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir });
    const printed = /client_id:\s+(\S+)\s+client_secret:\s+(sk_live_\S+)/.exec(server.stdout());
    expect(printed).not.toBeNull();
    [, clientId, clientSecret] = printed as RegExpExecArray;
    const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
    expect(reply.status).toBe(200);
    firstToken = reply.body.access_token;
    // The secret appears in the one human-readable block, never in a JSON log line.
    const logLines = server.stdout().split('\n').filter((line) => line.startsWith('{'));
    expect(logLines.join('\n')).not.toContain(clientSecret);
    expect(await server.stop()).toBe(0);
  });

  it('keeps every file under DATA_DIR owner-only while it serves and once it has stopped', async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      // A write that reaches the WAL, as a signing key does.
      const reply = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
      expect(reply.status).toBe(200);
      expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
      expect(looseModes(dataDir)).toEqual([]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    expect(looseModes(dataDir)).toEqual([]);
  });

  it('keeps agents, keys and tokens across a restart and prints no new credentials', async () => {
    const server = await startServerProcess({ DATA_DIR: dataDir });
    expect(server.stdout()).not.toContain('client_secret');
    const introspection = await send(server, '/api/v1/token/introspect', bearer(firstToken, form({ token: firstToken })));
    expect(introspection.body).toMatchObject({ active: true, sub: clientId });
    expect(await server.stop()).toBe(0);
  });

  it('stops with one line naming the variable when the configuration is bad', async () => {
    const result = await runToExit({ DATA_DIR: dataDir, PORT: 'eighty', SIGNING_ALG: 'HS256' });
    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('PORT must be a whole number');
    expect(result.stderr).toContain('SIGNING_ALG must be one of RS256, ES256, EdDSA');
  });

  it('stops with one line naming BOOTSTRAP_ADMIN_CLIENT_SECRET when it is under 32 characters, without echoing it', async () => {
    const secret = 'sk_live_thirty-one-characters-x';
    const result = await runToExit({ DATA_DIR: dataDir, PORT: '0', BOOTSTRAP_ADMIN_CLIENT_ID: '00000000-0000-4000-8000-000000000001', BOOTSTRAP_ADMIN_CLIENT_SECRET: secret });
    expect(result.code).toBe(2);
    expect(result.stderr).toBe('sentryagent-idp: Invalid configuration: BOOTSTRAP_ADMIN_CLIENT_SECRET must be at least 32 characters\n');
    expect(result.stdout + result.stderr).not.toContain(secret);
  });

  it('refuses a DATA_DIR that its group may write, with one line naming DATA_DIR', async () => {
    const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-shared-'));
    try {
      fs.chmodSync(shared, 0o770);
      const result = await runToExit({ DATA_DIR: shared, PORT: '0' });
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(
        `sentryagent-idp: DATA_DIR ${shared} cannot be used: ${shared} is writable by other users (mode 770); make it owner-only: chmod 700 ${shared}\n`,
      );
    } finally {
      fs.rmSync(shared, { recursive: true, force: true });
    }
  });
});

describe('npm start with NODE_ENV=production on an empty database', () => {
  it('generates and prints no bootstrap secret, logs how to make the first admin, and serves', async () => {
    const productionDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-production-'));
    try {
      const server = await startServerProcess({ DATA_DIR: productionDataDir, NODE_ENV: 'production', KEY_ENCRYPTION_KEY: crypto.randomBytes(32).toString('base64') });
      try {
        expect(server.stdout()).not.toContain('client_secret');
        expect(server.stdout()).not.toContain('sk_live_');
        const warnings = server.stdout().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line)).filter((line) => line.level === 40);
        expect(warnings.map((line) => line.msg)).toEqual([expect.stringContaining('no bootstrap admin is generated')]);
        expect(warnings[0].msg).toContain('BOOTSTRAP_ADMIN_CLIENT_ID');
        expect(warnings[0].msg).toContain('npx sentryagent-idp agents create');
        expect((await send(server, '/readyz')).status).toBe(200);
      } finally {
        expect(await server.stop()).toBe(0);
      }
    } finally {
      fs.rmSync(productionDataDir, { recursive: true, force: true });
    }
  });
});
