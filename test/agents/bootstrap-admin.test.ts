/**
 * The bootstrap admin with NODE_ENV=production (contract, Bootstrap): on an empty database
 * nothing is generated or printed, since it would land in the system journal; start-up
 * says how to make the first admin instead. Configured credentials still work.
 */
import { describe, expect, it, jest } from '@jest/globals';
import { FIRST_ADMIN_HINT } from '../../server/src/agents/bootstrap-admin.js';
import { KNOWN_SCOPES } from '../../server/src/authorization/scopes.js';
import { ADMIN, startTestServer, TEST_KEK } from '../support/test-server.js';
import { adminToken, getToken } from '../support/api.js';
import { CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, startServerOn } from '../support/cli-process.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

const NO_BOOTSTRAP_ENV = { BOOTSTRAP_ADMIN_CLIENT_ID: '', BOOTSTRAP_ADMIN_CLIENT_SECRET: '' };
const logLines = (logs: string[]) => logs.join('').split('\n').filter(Boolean).map((line) => JSON.parse(line));

describe('the bootstrap admin with NODE_ENV=production', () => {
  it('generates none on an empty database, and logs how to make the first admin', async () => {
    const server = await startTestServer({ env: { ...NO_BOOTSTRAP_ENV, NODE_ENV: 'production' } });
    try {
      expect(server.generatedAdmin).toBeUndefined();
      expect(await server.deps.knex('agents').count({ n: '*' })).toEqual([{ n: 0 }]);
      expect(await server.deps.knex('credentials').count({ n: '*' })).toEqual([{ n: 0 }]);
      const hints = logLines(server.logs).filter((line) => /no bootstrap admin is generated/.test(line.msg));
      expect(hints).toHaveLength(1);
      expect(hints[0].level).toBe(40); // warn
      expect(hints[0].msg).toContain('set BOOTSTRAP_ADMIN_CLIENT_ID (a UUID) and BOOTSTRAP_ADMIN_CLIENT_SECRET (at least 32 characters)');
      expect(hints[0].msg).toContain(
        'npx sentryagent-idp agents create --name bootstrap-admin --scope agents:read --scope agents:write',
      );
      expect(hints[0].msg).toContain('then npx sentryagent-idp credentials create <agentId>');
      expect(server.logs.join('')).not.toMatch(/sk_live_/);
    } finally {
      await server.stop();
    }
  });

  it('still creates the configured admin from BOOTSTRAP_ADMIN_*, and says nothing of making one', async () => {
    const server = await startTestServer({ env: { NODE_ENV: 'production' } });
    try {
      expect(server.generatedAdmin).toBeUndefined();
      expect(await adminToken(server)).toEqual(expect.any(String));
      expect(await server.deps.knex('agents').pluck('id')).toEqual([ADMIN.clientId]);
      expect(server.logs.join('')).not.toContain('no bootstrap admin is generated');
    } finally {
      await server.stop();
    }
  });

  it('generates and returns credentials on an empty database outside production, as before', async () => {
    const server = await startTestServer({ env: NO_BOOTSTRAP_ENV });
    try {
      expect(server.generatedAdmin).toEqual({ clientId: expect.stringMatching(/^[0-9a-f-]{36}$/), clientSecret: expect.stringMatching(/^sk_live_/) });
      expect(server.logs.join('')).not.toContain('no bootstrap admin is generated');
    } finally {
      await server.stop();
    }
  });

  it("makes a working first admin, holding every scope, with the CLI commands its hint names", async () => {
    const [create, credential] = [...FIRST_ADMIN_HINT.matchAll(/npx sentryagent-idp ([^,]+?)(?:,|$)/g)].map((match) => match[1].trim().split(' '));
    expect(create.slice(0, 2)).toEqual(['agents', 'create']);
    expect(credential).toEqual(['credentials', 'create', '<agentId>']);
    const database = await cliDatabase();
    // Production needs the key-encryption key set, embedded too: the CLI and the server share it.
    const env = { ...database.env, KEY_ENCRYPTION_KEY: TEST_KEK };
    try {
      const created = await runCli([...create, '--json'], env);
      expect(created.code).toBe(0);
      const agentId = created.json().agentId;
      const issued = await runCli([...credential.slice(0, 2), agentId, '--json'], env);
      expect(issued.code).toBe(0);
      const server = await startServerOn(database, { ...NO_BOOTSTRAP_ENV, NODE_ENV: 'production', KEY_ENCRYPTION_KEY: TEST_KEK });
      try {
        expect(server.generatedAdmin).toBeUndefined();
        const token = await getToken(server, agentId, issued.json().clientSecret, KNOWN_SCOPES.join(' '));
        expect(token).toEqual(expect.any(String));
      } finally {
        await server.close();
      }
    } finally {
      await database.drop();
    }
  });
});
