/**
 * sentryagent-idp federation partners …, federation bindings … and federation evaluate, in
 * process on a test server's database: the preset defaults, conditions in the command
 * line's syntax, inline keys from a file, --open-to and --org, the lifecycle audited as the
 * operator, refusals in the command line's words and exit codes, and a token's evaluation
 * explained without the token.
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
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

describe('sentryagent-idp federation evaluate', () => {
  const ISSUER = 'https://gitlab.cli-evaluate.test';
  const AUDIENCE = 'https://idp.example.com';
  let partnerId: string;
  let matching: { bindingId: string; agentId: string };
  let refusing: { bindingId: string; agentId: string };
  let mint: (claims?: JWTPayload) => Promise<string>;

  beforeAll(async () => {
    await ok('orgs', 'create', '--slug', 'fed-cli-eval', '--name', 'Evaluated');
    await ok('orgs', 'create', '--slug', 'fed-cli-eval-other', '--name', 'Elsewhere');
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const keysFile = path.join(dir, 'evaluate-keys.json');
    fs.writeFileSync(keysFile, JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k' }] }));
    partnerId = (
      await ok(
        'federation', 'partners', 'add', '--preset', 'gitlab', '--name', 'GitLab evaluated', '--issuer', ISSUER, '--audience', AUDIENCE,
        '--keys-file', keysFile, '--require', 'namespace_id=42', '--open-to', 'fed-cli-eval',
      )
    ).partnerId;
    const bind = async (name: string, condition: string) => {
      const { agentId } = await ok('agents', 'create', '--org', 'fed-cli-eval', '--name', name, '--scope', 'agents:read');
      const { bindingId } = await ok('federation', 'bindings', 'add', '--org', 'fed-cli-eval', '--partner', partnerId, '--agent', agentId, '--condition', condition);
      return { bindingId, agentId };
    };
    matching = await bind('eval-app', 'project_id=7');
    refusing = await bind('eval-other-app', 'project_id=8');
    mint = (claims = {}) =>
      new SignJWT({ iss: ISSUER, aud: AUDIENCE, sub: 'project_path:acme/app', namespace_id: '42', project_id: '7', jti: randomUUID(), ...claims })
        .setProtectedHeader({ alg: 'RS256', kid: 'k' })
        .setIssuedAt(Math.floor(server.deps.clock.now() / 1000))
        .setExpirationTime(Math.floor(server.deps.clock.now() / 1000) + 300)
        .sign(privateKey);
  });

  /** The table row of a binding, by its id. */
  const rowOf = (stdout: string, bindingId: string) => stdout.split('\n').find((line) => line.startsWith(bindingId));

  it('explains a token: the partner\'s checks, the binding that matches, and the failed condition of the one that does not, with its actual value', async () => {
    const token = await mint();
    const explained = await cli('federation', 'evaluate', partnerId, '--token', token);
    expect({ exitCode: explained.exitCode, stderr: explained.stderr }).toEqual({ exitCode: 0, stderr: '' });
    expect(explained.stdout).toMatch(/^ {2}partner: +[0-9a-f-]+\n {2}token: +verified\n {2}required claims: +met\n {2}would grant: +yes\n/);
    expect(explained.stdout).toMatch(/^namespace_id +eq +42 +"42" +yes$/m);
    expect(rowOf(explained.stdout, matching.bindingId)).toMatch(new RegExp(`^${matching.bindingId} +${matching.agentId} +yes +-$`));
    expect(rowOf(explained.stdout, refusing.bindingId)).toMatch(new RegExp(`^${refusing.bindingId} +${refusing.agentId} +no +project_id +eq +8 +"7"$`));
    expect(explained.stdout).not.toContain(token);

    const json = await cli('federation', 'evaluate', partnerId, '--token', token, '--json');
    expect(json.json()).toMatchObject({
      partnerId,
      token: { isVerified: true },
      wouldGrant: true,
      bindings: expect.arrayContaining([
        { ...matching, isMatch: true, conditions: [{ condition: { claim: 'project_id', op: 'eq', value: '7' }, isMet: true, actual: '7' }] },
        { ...refusing, isMatch: false, conditions: [{ condition: { claim: 'project_id', op: 'eq', value: '8' }, isMet: false, actual: '7' }] },
      ]),
    });
    expect(json.stdout).not.toContain(token);
  });

  it('reads the token from --token-file, --agent keeps one agent\'s bindings, and a refused token is explained (exit 0) without being printed', async () => {
    const tokenFile = path.join(dir, 'token.jwt');
    const stale = await mint({ aud: 'https://elsewhere.test', namespace_id: '41' });
    fs.writeFileSync(tokenFile, `${stale}\n`);
    const explained = await cli('federation', 'evaluate', partnerId, '--token-file', tokenFile, '--agent', refusing.agentId);
    expect(explained.exitCode).toBe(0);
    expect(explained.stdout).toMatch(/^ {2}token: +refused: .*aud/m);
    expect(explained.stdout).toMatch(/^ {2}would grant: +no$/m);
    expect(explained.stdout).toMatch(/^namespace_id +eq +42 +"41" +no$/m);
    expect(rowOf(explained.stdout, refusing.bindingId)).toMatch(/ no +project_id +eq +8 +"7"$/);
    expect(rowOf(explained.stdout, matching.bindingId)).toBeUndefined();
    expect(explained.stdout + explained.stderr).not.toContain(stale);
  });

  it('evaluates claims from --claims-file as a dry run: a number is not the string a condition expects', async () => {
    const claimsFile = path.join(dir, 'claims.json');
    fs.writeFileSync(claimsFile, JSON.stringify({ namespace_id: '42', project_id: 7 }));
    const dryRun = await cli('federation', 'evaluate', partnerId, '--claims-file', claimsFile);
    expect(dryRun.exitCode).toBe(0);
    expect(dryRun.stdout).toMatch(/^ {2}token: +not checked \(a dry run on claims\)$/m);
    expect(dryRun.stdout).toMatch(/^ {2}would grant: +no$/m);
    expect(rowOf(dryRun.stdout, matching.bindingId)).toMatch(/ no +project_id +eq +7 +7$/);
    const absent = path.join(dir, 'no-project.json');
    fs.writeFileSync(absent, JSON.stringify({ namespace_id: '42' }));
    expect(rowOf((await cli('federation', 'evaluate', partnerId, '--claims-file', absent)).stdout, refusing.bindingId)).toMatch(/ no +project_id +eq +8 +\(absent\)$/);
  });

  it('refuses no token and no claims, or more than one, as a usage error; a file that is not a claims object too', async () => {
    const claimsFile = path.join(dir, 'claims-usage.json');
    fs.writeFileSync(claimsFile, '{}');
    const neither = await cli('federation', 'evaluate', partnerId);
    expect(neither).toMatchObject({ exitCode: 2, stdout: '', stderr: 'sentryagent-idp: give one of --token, --token-file (a token to verify) or --claims-file (a dry run)\n' });
    const both = await cli('federation', 'evaluate', partnerId, '--token', 'a.b.c', '--claims-file', claimsFile);
    expect(both).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: give only one of --token, --token-file (a token to verify) or --claims-file (a dry run)\n' });
    expect(both.stderr).not.toContain('a.b.c');
    const list = path.join(dir, 'claims-list.json');
    fs.writeFileSync(list, '[]');
    expect((await cli('federation', 'evaluate', partnerId, '--claims-file', list)).stderr).toContain('is not a JSON object of claims');
    expect((await cli('federation', 'evaluate', partnerId, '--token-file', path.join(dir, 'missing.jwt'))).exitCode).toBe(2);
    expect((await cli('federation', 'evaluate', partnerId, '--claims-file', claimsFile, '--agent', 'nobody')).exitCode).toBe(2);
    expect((await cli('federation', 'evaluate', 'not-a-partner', '--claims-file', claimsFile)).exitCode).toBe(2);
  });

  it('with --org, sees only a partner open to that organization and its bindings; another one answers not found (3)', async () => {
    const claimsFile = path.join(dir, 'claims-org.json');
    fs.writeFileSync(claimsFile, JSON.stringify({ namespace_id: '42', project_id: '7' }));
    const inOrg = await cli('federation', 'evaluate', partnerId, '--claims-file', claimsFile, '--org', 'fed-cli-eval', '--json');
    expect(inOrg.exitCode).toBe(0);
    expect(inOrg.json().bindings.map((binding: { bindingId: string }) => binding.bindingId).sort()).toEqual([matching.bindingId, refusing.bindingId].sort());
    const elsewhere = await cli('federation', 'evaluate', partnerId, '--claims-file', claimsFile, '--org', 'fed-cli-eval-other');
    expect(elsewhere).toMatchObject({ exitCode: 3, stderr: 'sentryagent-idp: Partner not found.\n' });
    expect((await cli('federation', 'evaluate', '00000000-0000-4000-8000-000000000009', '--claims-file', claimsFile)).exitCode).toBe(3);
  });
});
