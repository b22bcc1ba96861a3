import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { ADMIN } from '../support/test-server.js';
import { bearer, form, getToken, send } from '../support/api.js';
import { CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, startServerOn, type CliDatabase } from '../support/cli-process.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

let database: CliDatabase;
const cli = (...args: string[]) => runCli(args, database.env);
const UNKNOWN = '11111111-1111-4111-8111-111111111111';
const ADMIN_ENV = { BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId, BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret };

beforeAll(async () => {
  database = await cliDatabase();
});
afterAll(() => database.drop());

describe('sentryagent-idp agents and credentials', () => {
  let agentId = '';
  let platformOrgId = '';

  it('creates an agent before any server has run, audited as operator, in the platform organization', async () => {
    const created = await cli('agents', 'create', '--name', 'deployer', '--description', 'ships', '--scope', 'agents:read', '--scope', 'audit:read', '--json');
    expect(created.code).toBe(0);
    // Read after the first change: on an embedded DATA_DIR with no database yet, `orgs show` (read-only) refuses.
    const platform = (await cli('orgs', 'show', 'platform', '--json')).json();
    platformOrgId = platform.orgId;
    expect(created.json()).toEqual({
      agentId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      orgId: platform.orgId,
      name: 'deployer',
      description: 'ships',
      status: 'active',
      scopes: ['agents:read', 'audit:read'],
      registeredRepository: null,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    agentId = created.json().agentId;
    const text = await cli('agents', 'create', '--name', 'reader', '--scope', 'agents:read tokens:read');
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^agent created\n {2}agent id: +[0-9a-f-]{36}\n/);
    expect(text.stdout).toMatch(/scopes: +agents:read tokens:read\n/);
    expect(text.stdout).toMatch(new RegExp(`organization: +${platform.orgId}\n`));
  });

  it('lists agents as a table, or as JSON, filtered by status', async () => {
    const table = await cli('agents', 'list');
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^AGENT ID +NAME +STATUS +SCOPES +CREATED$/);
    expect(rows).toHaveLength(2);
    expect(rows[0]).toMatch(new RegExp(`^${agentId} +deployer +active +agents:read audit:read +\\d{4}-`));
    const listed = await cli('agents', 'list', '--status', 'active', '--json');
    expect(listed.json().map((agent: { name: string }) => agent.name)).toEqual(['deployer', 'reader']);
    expect((await cli('--json', 'agents', 'list', '--status', 'suspended')).json()).toEqual([]);
    expect((await cli('agents', 'list', '--status', 'sleeping')).code).toBe(2);
  });

  it('refuses invalid agent input with exit 2 and says why', async () => {
    const unknownScope = await cli('agents', 'create', '--name', 'x', '--scope', 'root');
    expect(unknownScope.code).toBe(2);
    expect(unknownScope.stderr).toMatch(/^sentryagent-idp: The agent is invalid: --scope: /);
    expect((await cli('agents', 'create', '--name', '   ')).code).toBe(2);
    const missing = await cli('agents', 'create');
    expect(missing).toMatchObject({ code: 2, stderr: 'sentryagent-idp: --name is required\n' });
    const json = await cli('agents', 'create', '--name', 'x', '--scope', 'root', '--json');
    expect(JSON.parse(json.stderr)).toEqual({ error: 'validation_error', message: expect.stringContaining('--scope: ') });
  });

  it('creates a credential whose secret, shown once, gets a token from the server', async () => {
    const created = await cli('credentials', 'create', agentId, '--json');
    expect(created.code).toBe(0);
    const credential = created.json();
    expect(credential).toEqual({ credentialId: expect.any(String), clientId: agentId, clientSecret: expect.stringMatching(/^sk_live_/), createdAt: expect.any(String) });
    const text = await cli('credentials', 'create', agentId);
    expect(text.stdout).toMatch(/Store the secret now; it is not shown again\.\n[\s\S]*client_secret: +sk_live_[A-Za-z0-9_-]{43}\n/);
    const listed = await cli('credentials', 'list', agentId);
    expect(listed.stdout).not.toContain(credential.clientSecret);
    expect(listed.stdout.trimEnd().split('\n')).toHaveLength(3);
    const listedJson = await cli('credentials', 'list', agentId, '--json');
    expect(listedJson.code).toBe(0);
    expect(listedJson.stdout).not.toContain('sk_live_');
    expect(listedJson.json()).toEqual(
      expect.arrayContaining([{ credentialId: credential.credentialId, clientId: agentId, orgId: platformOrgId, status: 'active', createdAt: credential.createdAt, revokedAt: null }]),
    );
    expect(listedJson.json()).toHaveLength(2);

    const server = await startServerOn(database);
    try {
      const token = await getToken(server, agentId, credential.clientSecret);
      expect(token.split('.')).toHaveLength(3);
    } finally {
      await server.close();
    }
    const revoked = await cli('credentials', 'revoke', agentId, credential.credentialId, '--json');
    expect(revoked.json()).toMatchObject({ credentialId: credential.credentialId, status: 'revoked' });
    const again = await startServerOn(database);
    try {
      const refused = await send(again, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: credential.clientSecret }));
      expect(refused.status).toBe(401);
    } finally {
      await again.close();
    }
  });

  it('suspends, reactivates and decommissions; not found exits 3, a bad id 2, a decommissioned agent 4', async () => {
    const suspended = await cli('agents', 'suspend', agentId);
    expect(suspended).toMatchObject({ code: 0, stdout: `agent ${agentId} (deployer) is suspended\n` });
    const shown = await cli('agents', 'show', agentId, '--json');
    expect(shown.code).toBe(0);
    expect(shown.json()).toEqual(expect.objectContaining({ agentId, name: 'deployer', description: 'ships', status: 'suspended', scopes: ['agents:read', 'audit:read'] }));
    expect((await cli('agents', 'show', agentId)).stdout).toMatch(new RegExp(`^ {2}agent id: +${agentId}\n {2}name: +deployer\n[\\s\\S]* {2}status: +suspended\n`));
    expect((await cli('agents', 'reactivate', agentId, '--json')).json().status).toBe('active');
    expect((await cli('agents', 'suspend', agentId, '--json')).json()).toEqual({ ...shown.json(), updatedAt: expect.any(String) });
    expect((await cli('agents', 'reactivate', agentId, '--json')).json().status).toBe('active');
    expect((await cli('agents', 'decommission', agentId, '--json')).json().status).toBe('decommissioned');
    const afterwards = await cli('agents', 'reactivate', agentId);
    expect(afterwards).toMatchObject({ code: 4, stderr: 'sentryagent-idp: The agent has been decommissioned.\n' });
    expect((await cli('credentials', 'create', agentId)).code).toBe(4);
    expect(await cli('agents', 'suspend', UNKNOWN)).toMatchObject({ code: 3, stderr: 'sentryagent-idp: Agent not found.\n' });
    const unknownJson = await cli('agents', 'show', UNKNOWN, '--json');
    expect(unknownJson).toMatchObject({ code: 3, stdout: '' });
    expect(JSON.parse(unknownJson.stderr)).toEqual({ error: 'not_found', message: 'Agent not found.' });
    expect((await cli('credentials', 'revoke', agentId, UNKNOWN)).code).toBe(3);
    expect((await cli('agents', 'show', 'not-a-uuid')).code).toBe(2);
    expect((await cli('agents', 'suspend')).code).toBe(2);
  });

  it('records every change in the audit log as operator, and verifies the chain', async () => {
    const verified = await cli('audit', 'verify', '--json');
    expect(verified.code).toBe(0);
    expect(verified.json()).toEqual({ valid: true, checked: expect.any(Number), digestsChecked: 0 });
    const server = await startServerOn(database, ADMIN_ENV);
    try {
      const admin = await getToken(server, ADMIN.clientId, ADMIN.clientSecret);
      const events = await send(server, `/api/v1/audit?agentId=${agentId}`, bearer(admin));
      expect(events.body.data.map((event: { type: string }) => event.type)).toEqual([
        'agent.decommissioned',
        'agent.reactivated',
        'agent.suspended',
        'agent.reactivated',
        'agent.suspended',
        'credential.revoked',
        'token.issued',
        'credential.created',
        'credential.created',
        'agent.created',
      ]);
      const byCli = events.body.data.filter((event: { type: string }) => event.type !== 'token.issued');
      expect(byCli.every((event: { actor: string }) => event.actor === 'operator')).toBe(true);
      expect((await send(server, '/api/v1/audit/verify', bearer(admin))).body.valid).toBe(true);
      const victim = await server.deps.knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq').offset(1).first('id');
      await server.deps.knex('audit_events').where({ id: victim.id }).update({ actor: 'someone-else' });
    } finally {
      await server.close();
    }
    const broken = await cli('audit', 'verify');
    expect(broken.code).toBe(1);
    expect(broken.stdout).toMatch(/^audit chain BROKEN from sequence \d+ \(event \d+\): /);
    expect((await cli('audit', 'verify', '--json')).json()).toEqual({ valid: false, checked: 1, firstInvalidId: expect.any(String), firstInvalidSeq: 2, digestsChecked: 0 });
  });
});

const describeOnPostgres = process.env.DATABASE_URL ? describe : describe.skip; // embedded PGlite is single-process: no CLI beside a running server
describeOnPostgres('sentryagent-idp beside a running server', () => {
  it('revokes a credential, and the running server refuses it and its tokens at once', async () => {
    const server = await startServerOn(database);
    try {
      const agent = (await cli('agents', 'create', '--name', 'live', '--scope', 'agents:read', '--json')).json();
      const credential = (await cli('credentials', 'create', agent.agentId, '--json')).json();
      const token = await getToken(server, agent.agentId, credential.clientSecret);
      expect((await cli('credentials', 'revoke', agent.agentId, credential.credentialId)).code).toBe(0);
      const refused = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: credential.clientSecret }));
      expect(refused.status).toBe(401);
      expect((await send(server, '/api/v1/agents', bearer(token))).status).toBe(401);
    } finally {
      await server.close();
    }
  });
});
