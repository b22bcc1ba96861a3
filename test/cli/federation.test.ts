/**
 * sentryagent-idp federation partners … and federation bindings …, in process on a test
 * server's database: the preset defaults, conditions in the command line's syntax, inline
 * keys from a file, --open-to and --org, the lifecycle audited as the operator, refusals
 * in the command line's words and exit codes.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER, type Caller } from '../../server/src/authorization/caller.js';
import { parseCondition } from '../../server/src/cli/federation-commands.js';
import { runInProcess } from '../support/cli-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'federation-cli-'));
});
afterAll(async () => {
  await server.stop();
  fs.rmSync(dir, { recursive: true, force: true });
});

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
  (await server.deps.knex('audit_events').where('id', '>', id).orderBy('id').select('type', 'actor')).map((row: { type: string; actor: string }) => `${row.type} ${row.actor}`);

const EC_KEY = { kty: 'EC', kid: 'cluster-1', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' };

describe('conditions on the command line', () => {
  it('reads claim=value, claim~=pattern and "claim in a,b", JSON Pointers included', () => {
    expect(parseCondition('organization_slug=acme', 'require')).toEqual({ claim: 'organization_slug', op: 'eq', value: 'acme' });
    expect(parseCondition('ref=refs/heads/a=b', 'require')).toEqual({ claim: 'ref', op: 'eq', value: 'refs/heads/a=b' });
    expect(parseCondition('/kubernetes.io/namespace~=prod-*', 'condition')).toEqual({ claim: '/kubernetes.io/namespace', op: 'glob', value: 'prod-*' });
    expect(parseCondition('/a~1b=x', 'condition')).toEqual({ claim: '/a~1b', op: 'eq', value: 'x' });
    expect(parseCondition('pipeline_slug in deploy, release', 'condition')).toEqual({ claim: 'pipeline_slug', op: 'in', value: ['deploy', 'release'] });
    expect(() => parseCondition('no-operator', 'condition')).toThrow(/--condition "no-operator": expected claim=value/);
  });
});

describe('sentryagent-idp federation partners', () => {
  it('adds a buildkite partner with the preset defaults, open to an organization, audited as the operator', async () => {
    const org = (await ok('orgs', 'create', '--slug', 'fed-cli-acme', '--name', 'Acme')).organization;
    const before = await lastAuditId();
    const partner = await ok(
      'federation', 'partners', 'add', '--preset', 'buildkite', '--name', 'Acme on Buildkite', '--audience', 'https://idp.example.com',
      '--require', 'organization_slug=acme', '--open-to', 'fed-cli-acme',
    );
    expect(partner).toMatchObject({
      preset: 'buildkite',
      issuer: 'https://agent.buildkite.com',
      algorithms: ['RS256'],
      maxTokenAgeSeconds: 600,
      singleUseJti: true,
      requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }],
      orgIds: [org.orgId],
      status: 'active',
    });
    expect(await auditedSince(before)).toEqual(['federation.partner.created operator']);
    const shown = await cli('federation', 'partners', 'show', partner.partnerId);
    expect(shown.exitCode).toBe(0);
    expect(shown.stdout).toContain('required claims: organization_slug=acme');
    expect(shown.stdout).toContain('https://agent.buildkite.com');
    const listed = await cli('federation', 'partners', 'list');
    expect(listed.stdout).toContain(partner.partnerId);
  });

  it('refuses what breaks the rules, in the command line\'s words', async () => {
    const noPin = await cli('federation', 'partners', 'add', '--preset', 'buildkite', '--name', 'x', '--audience', 'a');
    expect(noPin.exitCode).toBe(2);
    expect(noPin.stderr).toContain('organization_slug');
    const plainHttp = await cli('federation', 'partners', 'add', '--preset', 'custom', '--name', 'x', '--audience', 'a', '--issuer', 'http://ci.example.com');
    expect(plainHttp.exitCode).toBe(2);
    expect(plainHttp.stderr).toContain('--issuer');
    expect((await cli('federation', 'partners', 'add', '--name', 'x')).stderr).toContain('--preset is required');
    const badAge = await cli('federation', 'partners', 'add', '--preset', 'custom', '--name', 'x', '--audience', 'a', '--issuer', 'https://a.test', '--max-token-age', 'soon');
    expect(badAge.exitCode).toBe(2);
    const privateFile = path.join(dir, 'private.json');
    fs.writeFileSync(privateFile, JSON.stringify({ keys: [{ ...EC_KEY, d: 'secret' }] }));
    const privateKey = await cli('federation', 'partners', 'add', '--preset', 'kubernetes', '--name', 'k', '--audience', 'a', '--issuer', 'https://k8s.test', '--keys-file', privateFile);
    expect(privateKey.exitCode).toBe(2);
    expect(privateKey.stderr).toContain('--keys-file');
    expect((await cli('federation', 'partners', 'add', '--preset', 'custom', '--name', 'x', '--audience', 'a', '--issuer', 'https://a.test', '--open-to', 'no-such-org')).exitCode).toBe(3);
    expect((await cli('federation', 'partners', 'show', '00000000-0000-4000-8000-000000000009')).exitCode).toBe(3);
  });

  it('updates (inline keys from a file), suspends, reactivates and removes one', async () => {
    const partner = await ok('federation', 'partners', 'add', '--preset', 'kubernetes', '--name', 'Cluster', '--audience', 'https://idp.example.com', '--issuer', 'https://k8s.test');
    const keysFile = path.join(dir, 'keys.json');
    fs.writeFileSync(keysFile, JSON.stringify({ keys: [EC_KEY] }));
    const before = await lastAuditId();
    const updated = await ok(
      'federation', 'partners', 'update', partner.partnerId, '--keys-file', keysFile, '--max-token-age', '300', '--single-use-jti', 'true',
      '--require', '/kubernetes.io/namespace~=prod-*', '--open-to', 'platform',
    );
    expect(updated).toMatchObject({
      keys: { keys: [EC_KEY] },
      jwksUri: null,
      maxTokenAgeSeconds: 300,
      singleUseJti: true,
      requiredClaims: [{ claim: '/kubernetes.io/namespace', op: 'glob', value: 'prod-*' }],
      orgIds: [expect.any(String)],
    });
    expect((await ok('federation', 'partners', 'update', partner.partnerId, '--keys-file', 'none', '--require', 'none', '--open-to', 'none'))).toMatchObject({ keys: null, requiredClaims: [], orgIds: [] });
    expect((await ok('federation', 'partners', 'suspend', partner.partnerId)).status).toBe('suspended');
    expect((await ok('federation', 'partners', 'reactivate', partner.partnerId)).status).toBe('active');
    expect((await ok('federation', 'partners', 'remove', partner.partnerId)).partnerId).toBe(partner.partnerId);
    expect(await auditedSince(before)).toEqual([
      'federation.partner.updated operator',
      'federation.partner.updated operator',
      'federation.partner.suspended operator',
      'federation.partner.reactivated operator',
      'federation.partner.deleted operator',
    ]);
    expect((await cli('federation', 'partners', 'show', partner.partnerId)).exitCode).toBe(3);
  });
});

describe('sentryagent-idp federation bindings', () => {
  it('binds an agent of --org to a partner open to it, lists, shows and removes the binding; another organization does not find it', async () => {
    const org = (await ok('orgs', 'create', '--slug', 'fed-cli-tenant', '--name', 'Tenant')).organization;
    await ok('orgs', 'create', '--slug', 'fed-cli-other', '--name', 'Other');
    const agent = await ok('agents', 'create', '--org', 'fed-cli-tenant', '--name', 'deployer', '--scope', 'agents:read');
    const partner = await ok(
      'federation', 'partners', 'add', '--preset', 'gitlab', '--name', 'GitLab', '--issuer', 'https://gitlab.example.com', '--audience', 'https://idp.example.com',
      '--require', 'namespace_id=7', '--open-to', 'fed-cli-tenant', '--open-to', 'fed-cli-other',
    );
    const binding = await ok(
      'federation', 'bindings', 'add', '--org', 'fed-cli-tenant', '--partner', partner.partnerId, '--agent', agent.agentId,
      '--condition', 'project_path=acme/app', '--condition', 'ref_protected in true', '--scope', 'agents:read', '--max-ttl', '900',
    );
    expect(binding).toEqual({
      bindingId: expect.any(String),
      orgId: org.orgId,
      partnerId: partner.partnerId,
      agentId: agent.agentId,
      conditions: [
        { claim: 'project_path', op: 'eq', value: 'acme/app' },
        { claim: 'ref_protected', op: 'in', value: ['true'] },
      ],
      scopes: ['agents:read'],
      maxTtlSeconds: 900,
      createdAt: expect.any(String),
    });
    expect(await ok('federation', 'bindings', 'list', '--org', 'fed-cli-tenant', '--agent', agent.agentId)).toEqual([binding]);
    expect(await ok('federation', 'bindings', 'list', '--org', 'fed-cli-other')).toEqual([]);
    const shown = await cli('federation', 'bindings', 'show', binding.bindingId, '--org', 'fed-cli-tenant');
    expect(shown.stdout).toContain('conditions:   project_path=acme/app; ref_protected in true');
    expect((await cli('federation', 'bindings', 'show', binding.bindingId, '--org', 'fed-cli-other')).exitCode).toBe(3);
    expect((await cli('federation', 'bindings', 'remove', binding.bindingId, '--org', 'fed-cli-other')).exitCode).toBe(3);

    // No identifying claim, a scope the agent lacks, a partner not open to the agent's organization.
    const unidentified = await cli('federation', 'bindings', 'add', '--org', 'fed-cli-tenant', '--partner', partner.partnerId, '--agent', agent.agentId, '--condition', 'ref=main');
    expect(unidentified.exitCode).toBe(2);
    expect(unidentified.stderr).toContain('project_id');
    expect((await cli('federation', 'bindings', 'add', '--org', 'fed-cli-tenant', '--partner', partner.partnerId, '--agent', agent.agentId, '--condition', 'sub=x', '--scope', 'audit:read')).exitCode).toBe(2);
    const closed = await ok('federation', 'partners', 'add', '--preset', 'custom', '--name', 'Closed', '--issuer', 'https://closed.test', '--audience', 'a');
    expect((await cli('federation', 'bindings', 'add', '--org', 'fed-cli-tenant', '--partner', closed.partnerId, '--agent', agent.agentId, '--condition', 'sub=x')).exitCode).toBe(2);
    expect((await cli('federation', 'bindings', 'add', '--org', 'fed-cli-tenant', '--partner', partner.partnerId, '--agent', agent.agentId)).stderr).toContain('--condition is required');

    const before = await lastAuditId();
    expect((await ok('federation', 'bindings', 'remove', binding.bindingId, '--org', 'fed-cli-tenant')).bindingId).toBe(binding.bindingId);
    expect(await auditedSince(before)).toEqual(['federation.binding.deleted operator']);
    expect(await ok('federation', 'bindings', 'list', '--org', 'fed-cli-tenant')).toEqual([]);
  });

  it('lists a group of three words with its help', async () => {
    const help = await cli('federation', 'bindings', '--help');
    expect(help.exitCode).toBe(0);
    for (const verb of ['add', 'list', 'show', 'remove']) expect(help.stdout).toContain(`sentryagent-idp federation bindings ${verb}`);
    expect((await cli('federation', '--help')).stdout).toContain('sentryagent-idp federation partners add');
    expect((await cli('federation', 'partners', 'add', '--help')).stdout).toMatch(/--require <value> \(repeatable\) +a condition every token/);
  });
});
