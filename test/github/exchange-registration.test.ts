/**
 * POST /oidc/register: a registration policy (no agentId) lets matching workflows create
 * an agent, once per repository id and name, bound to them by a new trust policy.
 * Registration policies are shared by repository, so every test uses its own repository.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, json, send, type Reply, platformOrgIdOf } from '../support/api.js';
import type { ClaimFixtureName } from '../support/github-claims.js';
import {
  REFUSAL,
  auditEvents,
  createAgent,
  createPolicy,
  exchange,
  mintIdToken,
  register,
  startHarness,
  type Harness,
  type PolicyBody,
} from './exchange-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

let nextRepositoryId = 800_000_000;

/** A repository of its own: name and id, and claims that put a fixture's run in it. */
function newRepository() {
  const name = `octo-org/repo-${randomUUID().slice(0, 8)}`;
  const id = String((nextRepositoryId += 1));
  const claims = (overrides: Record<string, unknown> = {}) => ({
    repository: name,
    repository_id: id,
    workflow_ref: `${name}/.github/workflows/deploy.yml@refs/heads/main`,
    job_workflow_ref: `${name}/.github/workflows/deploy.yml@refs/heads/main`,
    ...overrides,
  });
  return { name, id, claims };
}

type Repository = ReturnType<typeof newRepository>;

async function registerFrom(
  repository: Repository,
  name: string,
  extra: Record<string, unknown> = {},
  fixture: ClaimFixtureName = 'push-main',
  overrides: Record<string, unknown> = {},
  server: { url: string } = h.server,
): Promise<Reply> {
  return register(server, await mintIdToken(h.github, fixture, repository.claims(overrides)), name, extra);
}

async function registrationPolicy(repository: Repository, fields: Record<string, unknown> = {}): Promise<PolicyBody> {
  return createPolicy(h, { repository: repository.name, scopes: ['agents:read', 'tokens:read'], ...fields });
}

describe('registration policy', () => {
  it('refuses registration without a registration policy for the repository', async () => {
    const repository = newRepository();
    const reply = await registerFrom(repository, 'ci-bot');
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 403, body: REFUSAL.violation });
    const [event] = await auditEvents(h, 'oidc.register.refused');
    expect(event).toMatchObject({ actor: `github:${repository.name}`, data: { reason: `no registration policy for repository "${repository.name}"`, name: 'ci-bot' } });
  });

  it('does not count a trust policy of an agent as a registration policy', async () => {
    const repository = newRepository();
    await createPolicy(h, { repository: repository.name, agentId: await createAgent(h) });
    expect((await registerFrom(repository, 'ci-bot')).body).toEqual(REFUSAL.violation);
  });

  it('carries a tag constraint into the trust policy it creates: a release workflow registers, and only tags act', async () => {
    const repository = newRepository();
    await registrationPolicy(repository, { tag: 'v*' });
    expect((await registerFrom(repository, 'releaser', {}, 'push-main')).body).toEqual(REFUSAL.branch);
    const reply = await registerFrom(repository, 'releaser', {}, 'tag');
    expect(reply.status).toBe(201);
    const policies = await send(h.server, `/api/v1/oidc/trust-policies?agentId=${reply.body.agentId}`, bearer(h.admin));
    expect(policies.body.data).toMatchObject([{ branch: null, tag: 'v*' }]);
    expect((await exchange(h.server, await mintIdToken(h.github, 'tag', repository.claims()), reply.body.agentId)).status).toBe(200);
    expect((await exchange(h.server, await mintIdToken(h.github, 'push-main', repository.claims()), reply.body.agentId)).body).toEqual(REFUSAL.branch);
  });

  it('creates an agent owned by the repository, with the policy scopes, bound by a new trust policy', async () => {
    const repository = newRepository();
    const template = await registrationPolicy(repository, { branch: 'main', environment: 'production', allowedEvents: ['workflow_run'] });
    const reply = await registerFrom(repository, 'ci-bot', { description: 'Deploys' }, 'environment-production');
    expect(reply.status).toBe(201);
    expect(reply.body).toEqual({
      agentId: expect.any(String),
      orgId: await platformOrgIdOf(h.server),
      name: 'ci-bot',
      description: 'Deploys',
      status: 'active',
      scopes: ['agents:read', 'tokens:read'],
      registeredRepository: repository.name,
      createdAt: expect.any(String),
      updatedAt: expect.any(String),
      created: true,
    });
    const { agentId } = reply.body;
    const policies = await send(h.server, `/api/v1/oidc/trust-policies?agentId=${agentId}`, bearer(h.admin));
    expect(policies.body.data).toEqual([
      {
        id: expect.any(String),
        orgId: reply.body.orgId,
        provider: 'github',
        repository: repository.name,
        agentId,
        branch: 'main',
        tag: null,
        environment: 'production',
        workflowRef: null,
        jobWorkflowRef: null,
        repositoryId: repository.id,
        repositoryOwnerId: '119938721',
        allowedEvents: ['workflow_run'],
        scopes: ['agents:read', 'tokens:read'],
        createdAt: expect.any(String),
      },
    ]);
    const [registered] = await auditEvents(h, 'agent.registered', agentId);
    expect(registered).toMatchObject({
      actor: `github:${repository.name}`,
      data: { name: 'ci-bot', scopes: ['agents:read', 'tokens:read'], registrationPolicyId: template.id, trustPolicyId: policies.body.data[0].id, repository_id: repository.id, run_id: '9876543210' },
    });

    // The new policy admits the workflow that registered the agent, and only such workflows.
    const exchangeFrom = async (fixture: ClaimFixtureName, overrides: Record<string, unknown> = {}) =>
      exchange(h.server, await mintIdToken(h.github, fixture, repository.claims(overrides)), agentId);
    expect((await exchangeFrom('environment-production')).status).toBe(200);
    expect((await exchangeFrom('environment-production', { ref: 'refs/heads/dev' })).body).toEqual(REFUSAL.branch);
    expect((await exchangeFrom('push-main')).body).toEqual(REFUSAL.violation);
    expect((await exchangeFrom('environment-production', { repository_id: '999' })).body).toEqual(REFUSAL.violation);
  });

  it('applies the registration policy constraints to registration itself', async () => {
    const repository = newRepository();
    await registrationPolicy(repository, { branch: 'main' });
    expect((await registerFrom(repository, 'ci-bot', {}, 'push-feature-branch', { repository: repository.name })).body).toEqual(REFUSAL.branch);
    expect((await registerFrom(repository, 'ci-bot', {}, 'pull-request-target')).body).toEqual(REFUSAL.violation);
    expect((await registerFrom(repository, 'ci-bot', {}, 'push-main', { repository: repository.name.replace('o', '\u043E') })).body).toEqual(REFUSAL.violation);
    expect((await registerFrom(repository, 'ci-bot', {}, 'push-main', { repository: repository.name.toUpperCase() })).status).toBe(201);
  });

  it('binds the registration policy to the first repository and owner, refusing re-created ones', async () => {
    const repository = newRepository();
    const template = await registrationPolicy(repository);
    expect((await registerFrom(repository, 'ci-bot')).status).toBe(201);
    const bound = await send(h.server, `/api/v1/oidc/trust-policies/${template.id}`, bearer(h.admin));
    expect(bound.body).toMatchObject({ repositoryId: repository.id, repositoryOwnerId: '119938721' });
    // A deleted and re-created repository of the same name has a new id: it may register nothing.
    const recreated = await registerFrom(repository, 'ci-bot', {}, 'push-main', { repository_id: '905551230' });
    expect({ status: recreated.status, body: recreated.body }).toEqual({ status: 403, body: REFUSAL.violation });
    const newOwner = await registerFrom(repository, 'other-bot', {}, 'recreated-owner', { repository_id: '905551231' });
    expect({ status: newOwner.status, body: newOwner.body }).toEqual({ status: 403, body: REFUSAL.violation });
    expect((await registerFrom(repository, 'second-bot')).status).toBe(201);
  });
});

describe('idempotence', () => {
  it('returns the same agent with created: false when a workflow registers the same name again', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    const first = await registerFrom(repository, 'ci-bot');
    const again = await registerFrom(repository, 'ci-bot', { description: 'ignored on a re-run' });
    expect(first.status).toBe(201);
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, created: false });
    expect(await auditEvents(h, 'agent.registered', first.body.agentId)).toHaveLength(1);
  });

  it('registers one agent for concurrent registrations of one name, across two instances', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    const peer = await h.startPeer();
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => registerFrom(repository, 'race-bot', {}, 'push-main', {}, i % 2 ? peer : h.server)));
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(replies.map((reply) => reply.body.agentId)).size).toBe(1);
    const policies = await send(h.server, `/api/v1/oidc/trust-policies?agentId=${replies[0].body.agentId}`, bearer(h.admin));
    expect(policies.body.data).toHaveLength(1);
  });

  it('registers a different agent for the same name from another repository', async () => {
    const [one, two] = [newRepository(), newRepository()];
    await registrationPolicy(one);
    await registrationPolicy(two);
    const first = await registerFrom(one, 'ci-bot');
    const second = await registerFrom(two, 'ci-bot');
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(second.body.agentId).not.toBe(first.body.agentId);
    expect(second.body.registeredRepository).toBe(two.name);
  });

  it('registers different names from one repository as different agents', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    const first = await registerFrom(repository, 'ci-bot');
    const second = await registerFrom(repository, 'cd-bot');
    expect([first.status, second.status]).toEqual([201, 201]);
    expect(second.body.agentId).not.toBe(first.body.agentId);
  });
});

describe('scopes', () => {
  it('grants a narrower set when asked, as a list or a string', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    expect((await registerFrom(repository, 'list-bot', { scopes: ['tokens:read'] })).body.scopes).toEqual(['tokens:read']);
    expect((await registerFrom(repository, 'string-bot', { scopes: 'agents:read tokens:read' })).body.scopes).toEqual(['agents:read', 'tokens:read']);
  });

  it('answers invalid_scope beyond the registration policy scopes', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    const reply = await registerFrom(repository, 'greedy-bot', { scopes: ['agents:read', 'agents:write'] });
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 400,
      body: { error: 'invalid_scope', error_description: "Requested scope 'agents:write' is not available." },
    });
    const agents = await send(h.server, '/api/v1/agents?limit=100', bearer(h.admin));
    expect(agents.body.data.map((agent: { name: string }) => agent.name)).not.toContain('greedy-bot');
  });

  it('follows one matching policy, never the scopes of one and the constraints of another', async () => {
    const repository = newRepository();
    await registrationPolicy(repository, { scopes: ['agents:read'] });
    const strict = await registrationPolicy(repository, { branch: 'main', environment: 'production', scopes: ['agents:write', 'audit:read'] });
    const mixed = await registerFrom(repository, 'mixed-bot', { scopes: ['agents:read', 'agents:write'] }, 'environment-production');
    expect({ status: mixed.status, body: mixed.body }).toEqual({
      status: 400,
      body: { error: 'invalid_scope', error_description: 'The requested scopes are not available together under one registration policy.' },
    });

    const strictBot = await registerFrom(repository, 'strict-bot', { scopes: ['agents:write', 'audit:read'] }, 'environment-production');
    expect(strictBot.body).toMatchObject({ created: true, scopes: ['agents:write', 'audit:read'] });
    const [policy] = (await send(h.server, `/api/v1/oidc/trust-policies?agentId=${strictBot.body.agentId}`, bearer(h.admin))).body.data;
    expect(policy).toMatchObject({ branch: 'main', environment: 'production', scopes: ['agents:write', 'audit:read'] });
    const [registered] = await auditEvents(h, 'agent.registered', strictBot.body.agentId);
    expect(registered.data.registrationPolicyId).toBe(strict.id);
    // A run from another branch gets nothing for the strict agent, though the loose policy matches it.
    const fromFeature = await exchange(h.server, await mintIdToken(h.github, 'push-feature-branch', repository.claims()), strictBot.body.agentId);
    expect(fromFeature.status).toBe(403);

    const looseBot = await registerFrom(repository, 'loose-bot', {}, 'environment-production');
    expect(looseBot.body).toMatchObject({ created: true, scopes: ['agents:read'] });
  });

  it('refuses a registration policy that does not name its scopes', async () => {
    const reply = await send(h.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: newRepository().name }, h.admin));
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({
      code: 'VALIDATION_ERROR',
      message: 'The trust policy is invalid: scopes: a registration policy (one without agentId) must name its scopes.',
    });
  });

  it('grants no scope under a registration policy that names none', async () => {
    const repository = newRepository();
    await createPolicy(h, { repository: repository.name, scopes: [] });
    expect((await registerFrom(repository, 'bare-bot')).body).toMatchObject({ created: true, scopes: [] });
    expect((await registerFrom(repository, 'wanting-bot', { scopes: ['agents:read'] })).body).toEqual({
      error: 'invalid_scope',
      error_description: "Requested scope 'agents:read' is not available.",
    });
  });
});

describe('request', () => {
  it.each([
    ['no name', { token: 'x' }, 'name'],
    ['an empty name', { token: 'x', name: '   ' }, 'name'],
    ['an unknown scope', { token: 'x', name: 'bot', scopes: ['root'] }, 'scopes.0'],
  ])('answers invalid_request for %s', async (_, body, field) => {
    const reply = await send(h.server, '/api/v1/oidc/register', json('POST', body));
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: `The '${field}' parameter is missing or malformed.` },
    });
  });

  it('refuses an ID token that fails verification with the generic invalid_grant', async () => {
    const repository = newRepository();
    await registrationPolicy(repository);
    const token = await mintIdToken(h.github, 'push-main', repository.claims(), { alg: 'none' });
    const reply = await register(h.server, token, 'ci-bot');
    expect({ status: reply.status, body: reply.body }).toEqual({ status: 400, body: REFUSAL.invalid });
  });
});
