/**
 * `sentryagent-idp orgs …` end to end, in process on a test server's database, and `--org`
 * on the agents, credentials and policies commands: an organization named by slug or id,
 * and the operator confined to it, so that nothing of another organization can be shown,
 * changed or listed (exit 3, nothing changed, nothing audited).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER, type Caller } from '../../server/src/authorization/caller.js';
import { form, getToken, send } from '../support/api.js';
import { runInProcess } from '../support/cli-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

const runAs = (caller: Caller, ...argv: string[]) => runInProcess(server, caller, argv);

const cli = (...argv: string[]) => runAs(OPERATOR_CALLER, ...argv);
/** The JSON a command printed, once it succeeded. */
async function ok(...argv: string[]) {
  const run = await cli(...argv, '--json');
  expect({ argv, exitCode: run.exitCode, stderr: run.stderr }).toEqual({ argv, exitCode: 0, stderr: '' });
  return run.json();
}

const lastAuditId = async () => Number((await server.deps.knex('audit_events').max({ id: 'id' }))[0].id);
const auditedSince = async (id: number) =>
  (await server.deps.knex('audit_events').where('id', '>', id).orderBy('id').select('type')).map((row: { type: string }) => row.type);

describe('sentryagent-idp orgs', () => {
  let acme: { orgId: string; slug: string };

  it('creates an organization with limits and a first admin, whose secret (shown once) gets a token; audited as operator', async () => {
    const before = await lastAuditId();
    const created = await ok(
      'orgs', 'create', '--slug', 'acme', '--name', 'Acme Corp', '--monthly-tokens', '1000', '--max-agents', '5',
      '--admin-name', 'acme-admin', '--admin-scope', 'agents:read', '--admin-scope', 'agents:write audit:read',
    );
    expect(created.organization).toEqual({
      orgId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      slug: 'acme',
      name: 'Acme Corp',
      status: 'active',
      isPlatform: false,
      limits: { monthlyTokens: 1000, maxAgents: 5, maxWebhookEndpoints: null },
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
    });
    acme = created.organization;
    const { agent, credential } = created.admin;
    expect(agent).toMatchObject({ orgId: acme.orgId, name: 'acme-admin', status: 'active', scopes: ['agents:read', 'agents:write', 'audit:read'] });
    expect(credential).toMatchObject({ clientId: agent.agentId, orgId: acme.orgId, status: 'active', clientSecret: expect.stringMatching(/^sk_live_/) });
    expect((await getToken(server, credential.clientId, credential.clientSecret)).split('.')).toHaveLength(3);
    expect(await auditedSince(before)).toEqual(expect.arrayContaining(['org.created', 'agent.created', 'credential.created']));
    const actors = await server.deps.knex('audit_events').where('id', '>', before).whereIn('type', ['org.created', 'agent.created', 'credential.created']).pluck('actor');
    expect(new Set(actors)).toEqual(new Set(['operator']));

    const text = await cli('orgs', 'create', '--slug', 'globex', '--name', 'Globex', '--admin-name', 'globex-admin', '--admin-scope', 'agents:read');
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(/^organization created\n {2}org id: +[0-9a-f-]{36}\n {2}slug: +globex\n/);
    expect(text.stdout).toMatch(/max agents: +none\n/);
    expect(text.stdout).toMatch(/Store the secret now; it is not shown again\.\n[\s\S]*client_id: +[0-9a-f-]{36}\n {2}client_secret: +sk_live_[A-Za-z0-9_-]{43}\n$/);
    const bare = await cli('orgs', 'create', '--slug', 'initech', '--name', 'Initech');
    expect(bare.exitCode).toBe(0);
    expect(bare.stdout).not.toContain('client_secret');
  });

  it('refuses invalid organizations with exit 2, naming the option; a slug taken exits 4', async () => {
    const cases: [argv: string[], stderr: RegExp][] = [
      [['--name', 'x'], /^sentryagent-idp: --slug is required\n$/],
      [['--slug', 'xx'], /^sentryagent-idp: --name is required\n$/],
      [['--slug', 'Not A Slug', '--name', 'x'], /^sentryagent-idp: The organization is invalid: --slug: must be 2 to 63 characters/],
      [['--slug', 'zz', '--name', 'x', '--max-agents', '0'], /^sentryagent-idp: The organization is invalid: --max-agents: /],
      [['--slug', 'zz', '--name', 'x', '--monthly-tokens', 'lots'], /^sentryagent-idp: --monthly-tokens must be a whole number\n$/],
      [['--slug', 'zz', '--name', 'x', '--admin-name', 'a', '--admin-scope', 'admin:orgs'], /^sentryagent-idp: The organization is invalid: --admin-scope: must be one of /],
      [['--slug', 'zz', '--name', 'x', '--admin-scope', 'agents:read'], /^sentryagent-idp: --admin-scope needs --admin-name\n$/],
    ];
    const before = await lastAuditId();
    for (const [argv, stderr] of cases) {
      const run = await cli('orgs', 'create', ...argv);
      expect({ argv, exitCode: run.exitCode, stdout: run.stdout, stderr: run.stderr }).toEqual({ argv, exitCode: 2, stdout: '', stderr: expect.stringMatching(stderr) });
    }
    expect(await cli('orgs', 'create', '--slug', 'acme', '--name', 'Again')).toMatchObject({ exitCode: 4, stderr: "sentryagent-idp: An organization with the slug 'acme' exists.\n" });
    expect(await auditedSince(before)).toEqual([]);
  });

  it('lists the organizations as a table, or as JSON, filtered by status', async () => {
    const table = await cli('orgs', 'list');
    expect(table.exitCode).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ORG ID +SLUG +NAME +STATUS +CREATED$/);
    expect(rows.map((row) => row.split(/ {2,}/)[1])).toEqual(['platform', 'acme', 'globex', 'initech']);
    expect(rows[1]).toMatch(new RegExp(`^${acme.orgId} +acme +Acme Corp +active +\\d{4}-`));
    expect((await ok('orgs', 'list', '--status', 'active')).map((org: { slug: string }) => org.slug)).toEqual(['platform', 'acme', 'globex', 'initech']);
    expect(await ok('orgs', 'list', '--status', 'suspended')).toEqual([]);
    expect(await cli('orgs', 'list', '--status', 'asleep')).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: --status must be one of active, suspended, decommissioned\n' });
  });

  it('shows one organization by slug or by id; an unknown one exits 3', async () => {
    const bySlug = await ok('orgs', 'show', 'acme');
    expect(await ok('orgs', 'show', acme.orgId)).toEqual(bySlug);
    expect(await ok('orgs', 'show', acme.orgId.toUpperCase())).toEqual(bySlug);
    expect(bySlug).toMatchObject({ orgId: acme.orgId, slug: 'acme', limits: { monthlyTokens: 1000, maxAgents: 5 } });
    const text = await cli('orgs', 'show', 'platform');
    expect(text.stdout).toMatch(/^ {2}org id: +[0-9a-f-]{36}\n {2}slug: +platform\n {2}name: +Platform\n {2}status: +active\n {2}platform: +yes/);
    expect((await cli('orgs', 'show', 'acme')).stdout).toMatch(/ {2}monthly tokens: +1,000\n {2}max agents: +5\n {2}max webhook endpoints: +none\n/);
    expect(await cli('orgs', 'show', 'nowhere')).toMatchObject({ exitCode: 3, stderr: 'sentryagent-idp: Organization not found.\n' });
    expect((await cli('orgs', 'show', '11111111-1111-4111-8111-111111111111')).exitCode).toBe(3);
    expect((await cli('orgs', 'show')).exitCode).toBe(2);
  });

  it('updates the name, slug and limits (none: no limit); the platform keeps its slug', async () => {
    const before = await lastAuditId();
    const updated = await ok('orgs', 'update', 'acme', '--name', 'Acme Inc', '--max-agents', 'none', '--max-webhook-endpoints', '3');
    expect(updated).toMatchObject({ orgId: acme.orgId, name: 'Acme Inc', limits: { monthlyTokens: 1000, maxAgents: null, maxWebhookEndpoints: 3 } });
    const renamed = await cli('orgs', 'update', acme.orgId, '--slug', 'acme-inc');
    expect(renamed.exitCode).toBe(0);
    expect(renamed.stdout).toMatch(/^organization updated\n[\s\S]* {2}slug: +acme-inc\n/);
    expect((await cli('orgs', 'show', 'acme')).exitCode).toBe(3);
    await ok('orgs', 'update', 'acme-inc', '--slug', 'acme', '--max-agents', '5');
    const audited = await server.deps.knex('audit_events').where('id', '>', before).orderBy('id').select('type', 'actor', 'data');
    expect(audited[0]).toMatchObject({ type: 'org.updated', actor: 'operator', data: { changed: ['name', 'limits.maxAgents', 'limits.maxWebhookEndpoints'] } });

    expect(await cli('orgs', 'update', 'platform', '--slug', 'root')).toMatchObject({ exitCode: 4, stderr: "sentryagent-idp: The platform organization's slug cannot change.\n" });
    expect((await cli('orgs', 'update', 'acme')).stderr).toMatch(/^sentryagent-idp: The change is invalid: at least one of slug, name, limits is required/);
    expect(await cli('orgs', 'update', 'acme', '--monthly-tokens=-5')).toMatchObject({ exitCode: 2, stderr: expect.stringMatching(/^sentryagent-idp: The change is invalid: --monthly-tokens: /) });
    expect(await cli('orgs', 'update', 'acme', '--max-agents', 'many')).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: --max-agents must be a whole number or none (no limit)\n' });
    expect((await cli('orgs', 'update', 'nowhere', '--name', 'x')).exitCode).toBe(3);
  });

  it("counts this month's usage: tokens against the limit, the top agents, refusals by reason, agents against the limit", async () => {
    const org = (await ok('orgs', 'create', '--slug', 'metered', '--name', 'Metered', '--monthly-tokens', '2', '--max-agents', '3', '--admin-name', 'm', '--admin-scope', 'agents:read')).admin;
    const { clientId, clientSecret } = org.credential;
    await getToken(server, clientId, clientSecret);
    await getToken(server, clientId, clientSecret);
    const refused = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
    expect(refused.status).toBeGreaterThanOrEqual(400);
    await server.deps.refusals?.flush();

    const usage = await ok('orgs', 'usage', 'metered');
    expect(usage).toEqual({
      orgId: org.agent.orgId,
      month: expect.stringMatching(/^\d{4}-\d{2}$/),
      tokens: { granted: 2, limit: 2, byAgent: [{ agentId: clientId, name: 'm', granted: 2 }] },
      refusals: { org_monthly_limit: 1 },
      agents: { count: 1, limit: 3 },
    });
    const text = await cli('orgs', 'usage', org.agent.orgId);
    expect(text.exitCode).toBe(0);
    expect(text.stdout).toMatch(new RegExp(`^usage of metered \\(${org.agent.orgId}\\) in ${usage.month} \\(UTC\\)\\n {2}tokens granted: +2 of 2\\n {2}agents: +1 of 3\\n`));
    expect(text.stdout).toMatch(new RegExp(`top agents:\\nAGENT ID +NAME +GRANTED\\n${clientId} +m +2\\n`));
    expect(text.stdout).toMatch(/refused grants:\nREASON +COUNT\norg_monthly_limit +1\n$/);
    const quiet = await cli('orgs', 'usage', 'initech');
    expect(quiet.stdout).toMatch(/tokens granted: +0 of no limit\n {2}agents: +0 of no limit\n[\s\S]*top agents:\n {2}none this month\n[\s\S]*refused grants:\n {2}none this month\n$/);
  });

  it('suspends (no tokens), reactivates and decommissions (every agent with it); the platform cannot be', async () => {
    const admin = (await ok('orgs', 'create', '--slug', 'doomed', '--name', 'Doomed', '--admin-name', 'd', '--admin-scope', 'agents:read')).admin;
    const { clientId, clientSecret } = admin.credential;
    expect(await cli('orgs', 'suspend', 'doomed')).toMatchObject({ exitCode: 0, stdout: `organization doomed (${admin.agent.orgId}) is suspended\n` });
    const refused = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: clientSecret }));
    expect(refused.status).toBeGreaterThanOrEqual(400);
    expect((await ok('orgs', 'list', '--status', 'suspended')).map((org: { slug: string }) => org.slug)).toEqual(['doomed']);
    expect((await ok('orgs', 'reactivate', admin.agent.orgId)).status).toBe('active');
    await getToken(server, clientId, clientSecret);
    expect((await ok('orgs', 'decommission', 'doomed', '--yes')).status).toBe('decommissioned');
    expect((await ok('agents', 'show', clientId)).status).toBe('decommissioned');
    expect(await cli('orgs', 'reactivate', 'doomed')).toMatchObject({ exitCode: 4, stderr: 'sentryagent-idp: The organization has been decommissioned.\n' });
    expect((await cli('orgs', 'update', 'doomed', '--name', 'x')).exitCode).toBe(4);
    expect((await ok('orgs', 'decommission', 'doomed')).status).toBe('decommissioned');
    expect(await cli('orgs', 'suspend', 'platform')).toMatchObject({ exitCode: 4, stderr: 'sentryagent-idp: The platform organization cannot be suspended.\n' });
    expect((await cli('orgs', 'decommission', 'platform', '--yes')).exitCode).toBe(4);
    expect((await cli('orgs', 'decommission', '--help')).stdout).toMatch(/--yes +do not ask for confirmation on a terminal/);
  });
});

describe('--org on the agents, credentials and policies commands', () => {
  it('creates and lists in the organization named by slug or by id; the platform organization by default', async () => {
    const org = (await ok('orgs', 'create', '--slug', 'hooli', '--name', 'Hooli')).organization;
    const bySlug = await ok('agents', 'create', '--org', 'hooli', '--name', 'hooli-bot', '--scope', 'agents:read');
    expect(bySlug.orgId).toBe(org.orgId);
    const byId = await ok('agents', 'create', '--org', org.orgId, '--name', 'hooli-bot-2');
    expect(byId.orgId).toBe(org.orgId);
    expect((await ok('agents', 'list', '--org', 'hooli')).map((agent: { name: string }) => agent.name)).toEqual(['hooli-bot', 'hooli-bot-2']);
    expect(await ok('agents', 'list', '--org', org.orgId)).toEqual(await ok('agents', 'list', '--org', 'hooli'));
    const platform = await ok('orgs', 'show', 'platform');
    const platformAgents = await ok('agents', 'list');
    expect(platformAgents.every((agent: { orgId: string }) => agent.orgId === platform.orgId)).toBe(true);
    expect(await ok('agents', 'list', '--org', 'platform')).toEqual(platformAgents);

    const shown = await cli('agents', 'show', bySlug.agentId);
    expect(shown.stdout).toMatch(new RegExp(` {2}organization: +hooli \\(${org.orgId}\\)\\n`));
    const policy = await ok('policies', 'add', '--org', 'hooli', '--repository', 'hooli/app', '--agent', bySlug.agentId);
    expect(policy.orgId).toBe(org.orgId);
    const registration = await ok('policies', 'add', '--org', org.orgId, '--repository', 'hooli/reg', '--scope', '');
    expect(registration).toMatchObject({ orgId: org.orgId, agentId: null });
    expect((await ok('policies', 'list', '--org', 'hooli')).map((p: { id: string }) => p.id)).toEqual([policy.id, registration.id].sort());
    expect((await ok('policies', 'list')).some((p: { orgId: string }) => p.orgId === org.orgId)).toBe(false);
    expect((await cli('policies', 'add', '--org', 'hooli', '--repository', 'hooli/web', '--agent', byId.agentId)).stdout).toMatch(new RegExp(` {2}organization: +${org.orgId}\\n`));

    expect(await cli('agents', 'list', '--org', 'nowhere')).toMatchObject({ exitCode: 3, stderr: 'sentryagent-idp: Organization not found.\n' });
    expect((await cli('agents', 'create', '--org', 'nowhere', '--name', 'x')).exitCode).toBe(3);
    expect((await cli('agents', 'list', '--help')).stdout).toMatch(/--org <value> +the organization, by slug or id/);
  });

  describe('isolation: --org A reaches nothing of organization B', () => {
    interface Tenant {
      orgId: string;
      slug: string;
      agentId: string;
      credentialId: string;
      policyId: string;
    }
    const tenants: Record<'a' | 'b', Tenant> = {} as Record<'a' | 'b', Tenant>;

    beforeAll(async () => {
      for (const key of ['a', 'b'] as const) {
        const slug = `tenant-${key}`;
        const { orgId } = (await ok('orgs', 'create', '--slug', slug, '--name', `Tenant ${key}`)).organization;
        const { agentId } = await ok('agents', 'create', '--org', slug, '--name', `${slug}-agent`, '--scope', 'agents:read');
        const { credentialId } = await ok('credentials', 'create', agentId, '--org', slug);
        const { id: policyId } = await ok('policies', 'add', '--org', slug, '--repository', `${slug}/app`, '--agent', agentId);
        tenants[key] = { orgId, slug, agentId, credentialId, policyId };
      }
    });

    const snapshot = async (t: Tenant) => ({
      agent: await server.deps.knex('agents').where({ id: t.agentId }).first(),
      credentials: await server.deps.knex('credentials').where({ agent_id: t.agentId }).orderBy('id'),
      policies: await server.deps.knex('trust_policies').where({ org_id: t.orgId }).orderBy('id'),
    });

    const attempts: [name: string, argv: (b: Tenant) => string[]][] = [
      ['agents show', (b) => ['agents', 'show', b.agentId]],
      ['agents update', (b) => ['agents', 'update', b.agentId, '--name', 'stolen']],
      ['agents suspend', (b) => ['agents', 'suspend', b.agentId]],
      ['agents reactivate', (b) => ['agents', 'reactivate', b.agentId]],
      ['agents decommission', (b) => ['agents', 'decommission', b.agentId, '--yes']],
      ['credentials create', (b) => ['credentials', 'create', b.agentId]],
      ['credentials list', (b) => ['credentials', 'list', b.agentId]],
      ['credentials revoke', (b) => ['credentials', 'revoke', b.agentId, b.credentialId]],
      ['policies remove', (b) => ['policies', 'remove', b.policyId]],
    ];

    for (const by of ['slug', 'id'] as const) {
      it.each(attempts)(`%s of B's under --org A (by ${by}): exit 3, nothing changed, nothing audited`, async (_, argvOf) => {
        const { a, b } = tenants;
        const before = await lastAuditId();
        const state = await snapshot(b);
        const refused = await cli(...argvOf(b), '--org', by === 'slug' ? a.slug : a.orgId);
        expect(refused).toMatchObject({ exitCode: 3, stdout: '', stderr: expect.stringMatching(/^sentryagent-idp: (Agent|Trust policy) not found\.\n$/) });
        expect(await auditedSince(before)).toEqual([]);
        expect(await snapshot(b)).toEqual(state);
      });
    }

    it("cannot attach a policy to B's agent under --org A (it names no agent there)", async () => {
      const { a, b } = tenants;
      const before = await lastAuditId();
      const refused = await cli('policies', 'add', '--org', a.slug, '--repository', 'tenant-a/steal', '--agent', b.agentId);
      expect(refused).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: agentId does not name an existing agent.\n' });
      expect(await auditedSince(before)).toEqual([]);
    });

    it("lists under --org A never show B's agents or policies", async () => {
      const { a, b } = tenants;
      const agents = await ok('agents', 'list', '--org', a.slug);
      expect(agents.map((agent: { agentId: string }) => agent.agentId)).toEqual([a.agentId]);
      const table = await cli('agents', 'list', '--org', a.orgId);
      expect(table.stdout).toContain(a.agentId);
      expect(table.stdout).not.toContain(b.agentId);
      expect((await ok('policies', 'list', '--org', a.slug)).map((policy: { id: string }) => policy.id)).toEqual([a.policyId]);
      expect(await ok('policies', 'list', '--org', a.slug, '--agent', b.agentId)).toEqual([]);
      expect((await cli('policies', 'list', '--org', a.slug)).stdout).not.toContain(b.policyId);
    });

    it('the same commands under --org B (and without --org) reach B', async () => {
      const { b } = tenants;
      expect((await ok('agents', 'show', b.agentId, '--org', b.slug)).orgId).toBe(b.orgId);
      expect((await ok('agents', 'show', b.agentId)).orgId).toBe(b.orgId);
      expect(await ok('credentials', 'list', b.agentId, '--org', b.orgId)).toHaveLength(1);
      expect((await ok('policies', 'remove', b.policyId, '--org', b.slug)).id).toBe(b.policyId);
    });

    it('a platform admin:orgs agent is confined by --org too', async () => {
      const { a, b } = tenants;
      const platform = await ok('orgs', 'show', 'platform');
      const admin = agentCaller('00000000-0000-4000-8000-0000000000a1', ['agents:read', 'admin:orgs'], { orgId: platform.orgId, isPlatform: true });
      expect((await runAs(admin, 'agents', 'show', b.agentId, '--json')).json().orgId).toBe(b.orgId);
      expect((await runAs(admin, 'agents', 'show', b.agentId, '--org', a.slug)).exitCode).toBe(3);
      expect((await runAs(admin, 'agents', 'list', '--org', a.slug, '--json')).json().map((agent: { agentId: string }) => agent.agentId)).toEqual([a.agentId]);
    });

    it("an agent of A running the CLI: orgs list is refused (5), B is not found (3), its own organization is readable", async () => {
      const { a, b } = tenants;
      const lesser = agentCaller(a.agentId, ['agents:read', 'agents:write'], { orgId: a.orgId, isPlatform: false });
      expect(await runAs(lesser, 'orgs', 'list')).toMatchObject({ exitCode: 5, stdout: '' });
      expect((await runAs(lesser, 'orgs', 'create', '--slug', 'mine', '--name', 'Mine')).exitCode).toBe(5);
      expect((await runAs(lesser, 'orgs', 'show', b.slug)).exitCode).toBe(3);
      expect((await runAs(lesser, 'orgs', 'show', a.slug, '--json')).json().orgId).toBe(a.orgId);
      expect((await runAs(lesser, 'agents', 'list', '--org', b.slug)).exitCode).toBe(3);
      expect((await runAs(lesser, 'agents', 'show', b.agentId)).exitCode).toBe(3);
      expect((await runAs(lesser, 'agents', 'list', '--org', a.slug, '--json')).json().map((agent: { agentId: string }) => agent.agentId)).toEqual([a.agentId]);
    });
  });
});
