import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { runToExit, startServerProcess } from '../support/server-process.js';
import { bearer, form, send } from '../support/api.js';

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
});
