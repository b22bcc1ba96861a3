/**
 * `sentryagent-idp console`: a sign-in link for the admin console whose fragment holds a
 * 15-minute token, issued through the grant path every token takes, accepted by a server
 * on the same database, audited with the operator as actor. Run by the built CLI, with a
 * server running (on the embedded database, the server runs the command) and without one.
 */
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { KNOWN_SCOPES } from '../../server/src/authorization/scopes.js';
import type { GeneratedAdmin } from '../../server/src/agents/bootstrap-admin.js';
import type { RunningServer } from '../../server/src/server.js';
import { bearer, form, getToken, json, send } from '../support/api.js';
import { CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, runInProcess, startServerOn, type CliDatabase } from '../support/cli-process.js';
import { ADMIN, startTestServer } from '../support/test-server.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

const PUBLIC_URL = 'http://idp.test';
const UNKNOWN = '11111111-1111-4111-8111-111111111111';
const LINK = /^http:\/\/idp\.test\/console#token=([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

let database: CliDatabase;
let server: RunningServer | undefined;
let admin: GeneratedAdmin;
const cli = (...args: string[]) => runCli(args, { ...database.env, PUBLIC_URL });

beforeAll(async () => {
  database = await cliDatabase();
  server = await startServerOn(database);
  admin = server.generatedAdmin as GeneratedAdmin;
});
afterAll(async () => {
  await server?.close();
  await database.drop();
});

function running(): RunningServer {
  if (!server) throw new Error('no server is running');
  return server;
}

function tokenOf(url: string): string {
  const match = LINK.exec(url);
  if (!match) throw new Error(`not a console link: ${url}`);
  return match[1];
}

/** What introspection says of `token`, asked with a tokens:read token of the bootstrap admin. */
async function introspect(token: string): Promise<Record<string, unknown>> {
  const reader = await getToken(running(), admin.clientId, admin.clientSecret, 'tokens:read');
  const reply = await send(running(), '/api/v1/token/introspect', bearer(reader, form({ token })));
  expect(reply.status).toBe(200);
  return reply.body;
}

/** The `token.issued` audit rows of console sign-ins, oldest first. */
function consoleAuditRows(): Promise<{ agent_id: string; actor: string; data: Record<string, unknown> }[]> {
  return running().database.knex('audit_events').where({ type: 'token.issued' }).whereRaw("data->>'via' = 'console'").orderBy('created_at').select('agent_id', 'actor', 'data');
}

async function createAgent(...args: string[]): Promise<string> {
  const created = await cli('agents', 'create', ...args, '--json');
  expect(created.code).toBe(0);
  return created.json().agentId;
}

describe('sentryagent-idp console', () => {
  let adminToken = '';

  it('signs in as the bootstrap admin by default: a link whose fragment holds a 15-minute token the server accepts', async () => {
    const signIn = await cli('console', '--json');
    expect(signIn.code).toBe(0);
    const result = signIn.json();
    expect(result).toEqual({ url: expect.stringMatching(LINK), agentId: admin.clientId, scopes: [...KNOWN_SCOPES], expiresAt: expect.any(String) });
    expect(result.url).not.toContain('?');
    adminToken = tokenOf(result.url);

    const claims = await introspect(adminToken);
    expect(claims).toMatchObject({ active: true, sub: admin.clientId, client_id: admin.clientId, scope: KNOWN_SCOPES.join(' '), iss: PUBLIC_URL, aud: PUBLIC_URL });
    expect((claims.exp as number) - (claims.iat as number)).toBe(900);
    expect(new Date(result.expiresAt).getTime()).toBe((claims.exp as number) * 1000);
    const agents = await send(running(), '/api/v1/agents', bearer(adminToken));
    expect(agents.status).toBe(200);

    const [recorded] = await running().database.knex('access_tokens').where({ jti: claims.jti }).select('grant_type', 'credential_id', 'agent_id');
    expect(recorded).toEqual({ grant_type: 'console', credential_id: null, agent_id: admin.clientId });
  });

  it('audits the sign-in as token.issued by the operator, via console, without the token', async () => {
    const rows = await consoleAuditRows();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toEqual({
      agent_id: admin.clientId,
      actor: 'operator',
      data: { jti: expect.any(String), scope: KNOWN_SCOPES.join(' '), grantType: 'console', via: 'console' },
    });
    const everything = JSON.stringify(await running().database.knex('audit_events').select('data'));
    expect(everything).not.toContain(adminToken);
  });

  it('signs in as the agent --agent names, with its scopes, and says in words what the link is', async () => {
    const agentId = await createAgent('--name', 'viewer', '--scope', 'agents:read');
    const signIn = await cli('console', `--agent=${agentId}`);
    expect(signIn.code).toBe(0);
    const lines = signIn.stdout.trimEnd().split('\n');
    expect(lines).toEqual([
      'Admin console sign-in link:',
      expect.stringMatching(/^ {2}http:\/\/idp\.test\/console#token=/),
      `  agent:   ${agentId} (viewer)`,
      '  scopes:  agents:read',
      expect.stringMatching(/^ {2}expires: \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      'Whoever opens this link is signed in as this agent until it expires: treat it as a password.',
      'Browsers keep visited links in their history: open it in a private window.',
    ]);
    const token = tokenOf(lines[1].trim());
    expect(await introspect(token)).toMatchObject({ active: true, sub: agentId, scope: 'agents:read' });
    expect((await send(running(), '/api/v1/agents', bearer(token))).status).toBe(200);
    expect((await send(running(), '/api/v1/audit', bearer(token))).status).toBe(403);
  });

  it('refuses a suspended agent (exit 4) and an agent of a suspended organization, issuing nothing; an unknown id exits 3', async () => {
    const agentId = await createAgent('--name', 'sleeper', '--scope', 'agents:read');
    expect((await cli('agents', 'suspend', agentId)).code).toBe(0);
    expect((await cli('orgs', 'create', '--slug', 'acme', '--name', 'Acme')).code).toBe(0);
    const acmeAgent = await createAgent('--org', 'acme', '--name', 'acme-bot', '--scope', 'agents:read');
    expect((await cli('orgs', 'suspend', 'acme')).code).toBe(0);
    const issuedBefore = await running().database.knex('access_tokens').count({ count: '*' });

    expect(await cli('console', '--agent', agentId)).toMatchObject({ code: 4, stdout: '', stderr: `sentryagent-idp: Agent ${agentId} is suspended: it cannot obtain tokens.\n` });
    const organization = await cli('console', '--agent', acmeAgent, '--json');
    expect(organization.code).toBe(4);
    expect(JSON.parse(organization.stderr)).toEqual({ error: 'conflict', message: `The organization of agent ${acmeAgent} (acme) is suspended: its agents cannot obtain tokens.` });
    expect(await cli('console', '--agent', UNKNOWN)).toMatchObject({ code: 3, stdout: '', stderr: 'sentryagent-idp: Agent not found.\n' });
    expect(await cli('console', '--agent', 'not-an-id')).toMatchObject({ code: 2, stdout: '' });
    expect(await cli('console', '--org', 'acme')).toMatchObject({
      code: 3,
      stderr: 'sentryagent-idp: The bootstrap admin is not in this organization: name an agent with --agent.\n',
    });

    expect(await running().database.knex('access_tokens').count({ count: '*' })).toEqual(issuedBefore);
    expect(await consoleAuditRows()).toHaveLength(2);
  });

  it('is revoked like any token: revoking it with itself as bearer makes it inactive', async () => {
    const token = tokenOf((await cli('console', '--json')).json().url);
    expect((await introspect(token)).active).toBe(true);
    const revoked = await send(running(), '/api/v1/token/revoke', bearer(token, form({ token })));
    expect(revoked.status).toBe(200);
    expect(await introspect(token)).toEqual({ active: false });
    expect((await send(running(), '/api/v1/agents', bearer(token))).status).toBe(401);
  });

  it('works without a server running, on the database itself, with the servers\' key-encryption key', async () => {
    await running().close();
    server = undefined;
    const otherKek = await runCli(['console'], { ...database.env, PUBLIC_URL, KEY_ENCRYPTION_KEY: Buffer.alloc(32, 9).toString('base64') });
    expect(otherKek).toMatchObject({ code: 1, stdout: '', stderr: expect.stringMatching(/^sentryagent-idp: signing key \S+ is encrypted under key-encryption key /) });
    const signIn = await cli('console', '--json');
    expect(signIn.code).toBe(0);
    server = await startServerOn(database);
    const token = tokenOf(signIn.json().url);
    expect(await introspect(token)).toMatchObject({ active: true, sub: admin.clientId });
    expect((await send(running(), '/api/v1/agents', bearer(token))).status).toBe(200);
  });

  it('never takes an agent for the bootstrap admin by its name: not a namesake, nor in place of a decommissioned admin', async () => {
    // Any caller with agents:write may name an agent bootstrap-admin.
    const platformAdmin = await getToken(running(), admin.clientId, admin.clientSecret);
    const namesake = await send(running(), '/api/v1/agents', { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${platformAdmin}` }, body: JSON.stringify({ name: 'bootstrap-admin', scopes: ['agents:read'] }) });
    expect(namesake.status).toBe(201);
    const signIn = await cli('console', '--json');
    expect(signIn.json().agentId).toBe(admin.clientId);
    expect((await cli('agents', 'decommission', admin.clientId, '--yes')).code).toBe(0);
    const refused = await cli('console', '--json');
    expect(refused.code).toBe(4);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain(`Agent ${admin.clientId} is decommissioned`);
  });
});

describe('console, run in process', () => {
  it('narrows the token to the --scopes named, never beyond the agent\'s, and warns of plain http to another host', async () => {
    const testServer = await startTestServer();
    try {
      const readOnly = await runInProcess(testServer, OPERATOR_CALLER, ['console', '--scope', 'agents:read', '--scope', 'audit:read', '--json']);
      expect(readOnly.exitCode).toBe(0);
      expect(readOnly.json().scopes).toEqual(['agents:read', 'audit:read']);
      const token = new URL(readOnly.json().url).hash.slice('#token='.length);
      expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).scope).toBe('agents:read audit:read');
      expect((await send(testServer, '/api/v1/agents', json('POST', { name: 'not-allowed' }, token))).status).toBe(403);
      // http://idp.test is plain http to a host other than this machine.
      expect(readOnly.stderr).toContain('warning: PUBLIC_URL is plain http');

      const viewer = await runInProcess(testServer, OPERATOR_CALLER, ['agents', 'create', '--name', 'viewer', '--scope', 'agents:read', '--json']);
      const beyond = await runInProcess(testServer, OPERATOR_CALLER, ['console', `--agent=${viewer.json().agentId}`, '--scope', 'agents:write']);
      expect(beyond).toMatchObject({ exitCode: 5, stdout: '' });
      expect(beyond.stderr).toContain('does not hold agents:write');
      expect((await runInProcess(testServer, OPERATOR_CALLER, ['console', '--scope', 'agents:everything'])).exitCode).toBe(2);
    } finally {
      await testServer.stop();
    }
  });

  it('takes BOOTSTRAP_ADMIN_CLIENT_ID as the bootstrap admin, and mints for the operator only', async () => {
    const testServer = await startTestServer();
    try {
      const signIn = await runInProcess(testServer, OPERATOR_CALLER, ['console', '--json']);
      expect(signIn.exitCode).toBe(0);
      expect(signIn.json().agentId).toBe(ADMIN.clientId);
      const agent = agentCaller(ADMIN.clientId, KNOWN_SCOPES, { orgId: '00000000-0000-4000-8000-000000000000', isPlatform: true });
      expect(await runInProcess(testServer, agent, ['console'])).toMatchObject({ exitCode: 5, stdout: '', stderr: 'sentryagent-idp: Only the operator signs in to the console.\n' });
    } finally {
      await testServer.stop();
    }
  });
});
