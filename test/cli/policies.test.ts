import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { json, send } from '../support/api.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, startServerOn, type CliDatabase } from '../support/cli-process.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

const AUDIENCE = 'https://idp.test/github';
let database: CliDatabase;
let github: FakeGitHubIssuer;
const cli = (...args: string[]) => runCli(args, database.env);
const serve = () => startServerOn(database, { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE });
const idToken = () => github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE });

beforeAll(async () => {
  database = await cliDatabase();
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
});
afterAll(async () => {
  await github.close();
  await database.drop();
});

describe('sentryagent-idp policies', () => {
  let agentId = '';
  let policyId = '';

  it('adds a trust policy that lets the workflow get the agent\'s token, audited as operator, in the agent\'s organization', async () => {
    agentId = (await cli('agents', 'create', '--name', 'deployer', '--scope', 'agents:read', '--json')).json().agentId;
    const platform = (await cli('orgs', 'show', 'platform', '--json')).json();
    const added = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--branch', 'main', '--json');
    expect(added.code).toBe(0);
    expect(added.json()).toEqual({
      id: expect.any(String),
      provider: 'github',
      repository: 'octo-org/octo-repo',
      agentId,
      orgId: platform.orgId,
      branch: 'main',
      tag: null,
      environment: null,
      workflowRef: null,
      jobWorkflowRef: null,
      repositoryId: null,
      repositoryOwnerId: null,
      allowedEvents: [],
      scopes: null,
      createdAt: expect.any(String),
    });
    policyId = added.json().id;
    const server = await serve();
    try {
      const exchange = await send(server, '/api/v1/oidc/token', json('POST', { token: await idToken(), agentId }));
      expect(exchange).toMatchObject({ status: 200, body: { token_type: 'Bearer', scope: 'agents:read' } });
      const created = await server.deps.knex('audit_events').where({ type: 'trust_policy.created' }).first('actor', 'data');
      expect(created).toMatchObject({ actor: 'operator', data: { policy: { id: policyId } } });
    } finally {
      await server.close();
    }
  });

  it('adds a registration policy when no agent is named', async () => {
    const added = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--scope', 'agents:read', '--allow-event', 'workflow_run');
    expect(added.code).toBe(0);
    expect(added.stdout).toMatch(/^trust policy created\n[\s\S]* agent: +\(registration policy\)\n[\s\S]* constraints: +events=workflow_run scopes=agents:read\n/);
    const server = await serve();
    try {
      const registered = await send(server, '/api/v1/oidc/register', json('POST', { token: await idToken(), name: 'ci-bot' }));
      expect(registered).toMatchObject({ status: 201, body: { created: true, scopes: ['agents:read'] } });
    } finally {
      await server.close();
    }
  });

  it('refuses a ref for a branch, a bad repository and scopes the agent lacks, an unknown agent (2, as the API answers 400)', async () => {
    const ref = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--branch', 'refs/heads/main');
    expect(ref).toMatchObject({ code: 2, stderr: 'sentryagent-idp: The trust policy is invalid: --branch: must be a branch name or glob such as main or release/* (not a ref).\n' });
    expect((await cli('policies', 'add', '--repository', 'octo-org', '--agent', agentId)).code).toBe(2);
    const scope = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--scope', 'audit:read');
    expect(scope).toMatchObject({ code: 2, stderr: "sentryagent-idp: The agent does not hold the scope 'audit:read'.\n" });
    const unknown = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', '11111111-1111-4111-8111-111111111111');
    expect(unknown).toMatchObject({ code: 2, stderr: 'sentryagent-idp: agentId does not name an existing agent.\n' });
    expect((await cli('policies', 'add', '--agent', agentId)).code).toBe(2);
  });

  it('lists policies, all or one agent\'s', async () => {
    const table = await cli('policies', 'list');
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^POLICY ID +REPOSITORY +AGENT +REF +CONSTRAINTS$/);
    // The two added here and the one registration made for its agent.
    expect(rows).toHaveLength(3);
    expect(rows.find((row) => row.startsWith(policyId))).toMatch(new RegExp(`octo-org/octo-repo +${agentId} +branch main +-$`));
    const mine = await cli('policies', 'list', '--agent', agentId, '--json');
    expect(mine.json().map((policy: { id: string }) => policy.id)).toEqual([policyId]);
    // The first exchange bound the repository's ids to the policy.
    expect(mine.json()[0]).toMatchObject({ repositoryId: '892312441', repositoryOwnerId: '119938721' });
  });

  it('removes a policy, after which the workflow is refused; removing it again exits 3; --json prints the removed policy', async () => {
    expect(await cli('policies', 'remove', policyId)).toMatchObject({ code: 0, stdout: `trust policy ${policyId} (octo-org/octo-repo) removed\n` });
    expect(await cli('policies', 'remove', policyId)).toMatchObject({ code: 3, stderr: 'sentryagent-idp: Trust policy not found.\n' });
    const registration = (await cli('policies', 'list', '--json')).json().find((policy: { agentId: string | null }) => policy.agentId === null);
    const removed = await cli('policies', 'remove', registration.id, '--json');
    expect(removed.code).toBe(0);
    expect(removed.json()).toEqual(registration);
    const server = await serve();
    try {
      const refused = await send(server, '/api/v1/oidc/token', json('POST', { token: await idToken(), agentId }));
      expect(refused).toMatchObject({ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } });
      const deleted = await server.deps.knex('audit_events').where({ type: 'trust_policy.deleted' }).select('actor', 'agent_id');
      expect(deleted).toHaveLength(2);
      expect(deleted).toEqual(expect.arrayContaining([{ actor: 'operator', agent_id: agentId }, { actor: 'operator', agent_id: null }]));
    } finally {
      await server.close();
    }
  });

  it('adds a tag policy, shown as such; --branch and --tag together exit 2', async () => {
    const tagged = await cli('policies', 'add', '--repository', 'octo-org/releases', '--agent', agentId, '--tag', 'v*');
    expect(tagged.code).toBe(0);
    expect(tagged.stdout).toMatch(/^ +ref: +tag v\*$/m);
    const both = await cli('policies', 'add', '--repository', 'octo-org/releases', '--agent', agentId, '--tag', 'v*', '--branch', 'main');
    expect(both).toMatchObject({ code: 2, stderr: 'sentryagent-idp: The trust policy is invalid: --tag: a policy names a branch or a tag, not both.\n' });
  });
});

describe('sentryagent-idp policies evaluate', () => {
  let agentId = '';
  let onMain = '';
  let onRelease = '';
  /** The CLI with the fake issuer as GitHub, so that its tokens verify. */
  const evaluate = (...args: string[]) => runCli(['policies', 'evaluate', ...args], { ...database.env, GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE });
  const rowOf = (stdout: string, policyId: string) => stdout.split('\n').find((line) => line.startsWith(policyId));
  let dir = '';
  const claimsFile = (name: string, claims: Record<string, unknown>) => {
    const file = path.join(dir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(claims));
    return file;
  };

  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'policies-evaluate-'));
    agentId = (await cli('agents', 'create', '--name', 'evaluated', '--scope', 'agents:read', '--json')).json().agentId;
    onMain = (await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--branch', 'main', '--json')).json().id;
    onRelease = (await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--branch', 'release/*', '--json')).json().id;
  });

  it('explains a token: the policy that admits it, and the failed constraint of the one that does not, without printing the token', async () => {
    const token = await idToken();
    const explained = await evaluate('--token', token, '--agent', agentId);
    expect({ code: explained.code, stderr: explained.stderr }).toEqual({ code: 0, stderr: '' });
    expect(explained.stdout).toMatch(/^ {2}token: +verified\n {2}would match: +yes\n/);
    expect(rowOf(explained.stdout, onMain)).toMatch(new RegExp(`^${onMain} +${agentId} +yes +-$`));
    expect(rowOf(explained.stdout, onRelease)).toMatch(new RegExp(`^${onRelease} +${agentId} +no +branch +ref "refs/heads/main" is not "refs/heads/release/\\*"$`));
    expect(explained.stdout).not.toContain(token);
    const json = await evaluate('--token', token, '--agent', agentId, '--json');
    expect(json.json()).toEqual({
      token: { isVerified: true },
      policies: expect.arrayContaining([
        { policyId: onMain, agentId, isMatch: true, mismatches: [] },
        { policyId: onRelease, agentId, isMatch: false, mismatches: [{ constraint: 'branch', reason: 'ref "refs/heads/main" is not "refs/heads/release/*"' }] },
      ]),
    });
    expect(json.json().policies).toHaveLength(2);
    expect(json.stdout).not.toContain(token);
  });

  it('evaluates claims from --claims-file as a dry run, and --org keeps to that organization\'s policies', async () => {
    const file = claimsFile('dev-branch', { repository: 'octo-org/octo-repo', repository_id: '1', repository_owner_id: '2', ref: 'refs/heads/dev', event_name: 'push' });
    const dryRun = await evaluate('--claims-file', file, '--agent', agentId);
    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/^ {2}token: +not checked \(a dry run on claims\)\n {2}would match: +no\n/);
    expect(rowOf(dryRun.stdout, onMain)).toMatch(/ no +branch +ref "refs\/heads\/dev" is not "refs\/heads\/main"$/);
    await cli('orgs', 'create', '--slug', 'policies-eval-other', '--name', 'Other');
    const elsewhere = await evaluate('--claims-file', file, '--org', 'policies-eval-other');
    expect(elsewhere.code).toBe(0);
    expect(elsewhere.stdout).toMatch(/\nno trust policies for the repository\n$/);
    expect((await evaluate('--claims-file', file, '--org', 'platform', '--agent', agentId, '--json')).json().policies).toHaveLength(2);
  });

  it('refuses no token and no claims, or both, and claims without a repository, as usage errors (2)', async () => {
    expect(await evaluate()).toMatchObject({ code: 2, stderr: 'sentryagent-idp: give one of --token, --token-file (a token to verify) or --claims-file (a dry run)\n' });
    const file = claimsFile('no-repository', { ref: 'refs/heads/main' });
    expect((await evaluate('--token', 'a.b.c', '--claims-file', file)).code).toBe(2);
    expect(await evaluate('--claims-file', file)).toMatchObject({ code: 2, stderr: 'sentryagent-idp: The claims name no repository.\n' });
  });
});
