/**
 * The CLI makes no decision of its own: each command calls the same service as the API, with
 * the caller it is given. As the operator (what the CLI always is) every command goes
 * through; run in process as a lesser caller, every write is refused by the service's rule
 * (exit 5) and changes nothing. And one table of invalid trust policies gets the same
 * answer from the API and from `policies add`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER, type Caller, type CallerOrganization } from '../../server/src/authorization/caller.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { adminToken, bearer, createAgent, json, send, type AgentWithSecret } from '../support/api.js';
import { runInProcess } from '../support/cli-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let admin: string;
let platform: CallerOrganization;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
  platform = { orgId: await platformOrgId(server.deps.knex), isPlatform: true };
});
afterAll(() => server.stop());

const runAs = (caller: Caller, ...argv: string[]) => runInProcess(server, caller, argv);

const lastAuditId = async () => Number((await server.deps.knex('audit_events').max({ id: 'id' }))[0].id);
const auditedSince = async (id: number) =>
  (await server.deps.knex('audit_events').where('id', '>', id).select('type')).map((row: { type: string }) => row.type);

describe('every CLI write, as a caller holding less than its target, and as the operator', () => {
  const lesser = () => agentCaller('00000000-0000-4000-8000-0000000000c1', ['agents:read', 'agents:write', 'tokens:read'], platform);
  const commands: [name: string, argv: (target: AgentWithSecret, policyId: string) => string[]][] = [
    ['agents create with a scope the caller lacks', () => ['agents', 'create', '--name', 'cli-root', '--scope', 'audit:read']],
    ['agents update', (t) => ['agents', 'update', t.agentId, '--name', 'renamed']],
    ['agents update --scope', (t) => ['agents', 'update', t.agentId, '--scope', 'agents:read']],
    ['agents suspend', (t) => ['agents', 'suspend', t.agentId]],
    ['agents reactivate', (t) => ['agents', 'reactivate', t.agentId]],
    ['agents decommission', (t) => ['agents', 'decommission', t.agentId]],
    ['credentials create', (t) => ['credentials', 'create', t.agentId]],
    ['credentials revoke', (t) => ['credentials', 'revoke', t.agentId, t.credentialId]],
    ['policies add', (t) => ['policies', 'add', '--repository', 'octo-org/cli', '--agent', t.agentId]],
    ['policies add (registration)', () => ['policies', 'add', '--repository', 'octo-org/cli-reg', '--scope', 'audit:read']],
    ['policies remove', (_, policyId) => ['policies', 'remove', policyId]],
    ['keys rotate', () => ['keys', 'rotate']],
  ];

  it.each(commands)('%s', async (_, argvOf) => {
    const target = await createAgent(server, admin, { name: 'cli-target', scopes: ['agents:read', 'audit:read'] });
    const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/cli', agentId: target.agentId }, admin));
    if (argvOf(target, '')[1] === 'reactivate') await send(server, `/api/v1/agents/${target.agentId}/suspend`, bearer(admin, { method: 'POST' }));
    const argv = argvOf(target, policy.body.id);
    const before = await lastAuditId();
    const refused = await runAs(lesser(), ...argv);
    expect(refused).toMatchObject({ exitCode: 5, stdout: '' });
    expect(refused.stderr).toMatch(/^sentryagent-idp: (The agent holds scopes|You cannot give|A policy cannot allow|Only the operator)/);
    expect(await auditedSince(before)).toEqual([]);

    const allowed = await runAs(OPERATOR_CALLER, ...argv);
    expect(allowed).toMatchObject({ exitCode: 0, stderr: '' });
    expect(await auditedSince(before)).not.toEqual([]);
  });

  it('refuses the four attacks of an agents:write caller, as the API does', async () => {
    const attacker = await createAgent(server, admin, { name: 'cli-attacker', scopes: ['agents:read', 'agents:write'] });
    const as = agentCaller(attacker.agentId, ['agents:read', 'agents:write'], platform);
    const adminId = '00000000-0000-4000-8000-00000000a0a0';
    const before = await lastAuditId();
    const attempts = [
      await runAs(as, 'agents', 'create', '--name', 'root', '--scope', 'agents:read,agents:write,tokens:read,audit:read,webhooks:read,webhooks:write,admin:orgs'),
      await runAs(as, 'agents', 'update', attacker.agentId, '--scope', 'agents:read,agents:write,audit:read,admin:orgs'),
      await runAs(as, 'credentials', 'create', adminId),
      await runAs(as, 'policies', 'add', '--repository', 'attacker/any', '--agent', adminId),
    ];
    expect(attempts.map((attempt) => attempt.exitCode)).toEqual([5, 5, 5, 5]);
    expect(attempts.map((attempt) => attempt.stdout).join('')).toBe('');
    expect(await auditedSince(before)).toEqual([]);
  });

  it('reads as the caller too: a caller without agents:read is refused', async () => {
    const refused = await runAs(agentCaller('00000000-0000-4000-8000-0000000000c2', ['tokens:read'], platform), 'agents', 'list');
    expect(refused).toMatchObject({ exitCode: 5, stderr: "sentryagent-idp: The 'agents:read' scope is required.\n" });
  });
});

describe('one validation of trust policies for the API and the CLI', () => {
  let agent: AgentWithSecret;
  let retired: AgentWithSecret;
  beforeAll(async () => {
    agent = await createAgent(server, admin, { name: 'policy-agent', scopes: ['agents:read'] });
    retired = await createAgent(server, admin, { name: 'retired-agent', scopes: ['agents:read'] });
    await send(server, `/api/v1/agents/${retired.agentId}`, bearer(admin, { method: 'DELETE' }));
  });

  /** One invalid policy: its fields as the API takes them, and the CLI flags that say the same. */
  type Row = [name: string, fields: () => Record<string, string | string[]>, status: number];
  const rows: Row[] = [
    ['a bad repository', () => ({ repository: 'not a repository', agentId: agent.agentId }), 400],
    ['a ref for a branch', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, branch: 'refs/heads/main' }), 400],
    ['a malformed workflow ref', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, workflowRef: 'deploy.yml' }), 400],
    ['a repository id that is not a number', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, repositoryId: '12ab' }), 400],
    ['a repository id of 0', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, repositoryId: '0' }), 400],
    ['an event that needs no unlocking', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, allowedEvents: ['push'] }), 400],
    ['an unknown scope', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, scopes: ['root'] }), 400],
    ['a scope the agent does not hold', () => ({ repository: 'octo-org/octo-repo', agentId: agent.agentId, scopes: ['tokens:read'] }), 400],
    ['an agent id that is not a UUID', () => ({ repository: 'octo-org/octo-repo', agentId: '42' }), 400],
    ['an unknown agent', () => ({ repository: 'octo-org/octo-repo', agentId: '11111111-1111-4111-8111-111111111111' }), 400],
    ['a decommissioned agent', () => ({ repository: 'octo-org/octo-repo', agentId: retired.agentId }), 409],
    ['a registration policy that does not name its scopes', () => ({ repository: 'octo-org/octo-repo' }), 400],
  ];
  const FLAG: Record<string, string> = {
    repository: '--repository',
    agentId: '--agent',
    branch: '--branch',
    workflowRef: '--workflow-ref',
    repositoryId: '--repository-id',
    allowedEvents: '--allow-event',
    scopes: '--scope',
  };
  const EXIT_OF: Record<number, number> = { 400: 2, 409: 4 };

  it.each(rows)('%s', async (_, fieldsOf, status) => {
    const fields = fieldsOf();
    const api = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', ...fields }, admin));
    const argv = Object.entries(fields).flatMap(([name, value]) => (Array.isArray(value) ? value : [value]).flatMap((item) => [FLAG[name], item]));
    const cli = await runAs(OPERATOR_CALLER, 'policies', 'add', ...argv, '--json');
    expect(api.status).toBe(status);
    expect(cli.exitCode).toBe(EXIT_OF[status]);
    // The same verdict, each in its own words: the API names the field, the CLI its option.
    const inCliWords = String(api.body.message).replace(/: (\w+)(\.\d+)?: /, (whole, field: string) => (FLAG[field] ? `: ${FLAG[field]}: ` : whole));
    expect(JSON.parse(cli.stderr)).toEqual({ error: api.body.code.toLowerCase(), message: inCliWords });
  });

  it('accepts a numeric repository id from JSON and its digits from the command line, alike', async () => {
    const api = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/ids', agentId: agent.agentId, repositoryId: 123456 }, admin));
    const cli = await runAs(OPERATOR_CALLER, 'policies', 'add', '--repository', 'octo-org/ids', '--agent', agent.agentId, '--repository-id', '123456', '--json');
    expect(api.status).toBe(201);
    expect(cli.exitCode).toBe(0);
    expect(JSON.parse(cli.stdout).repositoryId).toBe(api.body.repositoryId);
  });
});
