/**
 * The federated grants on POST /token (RFC 8693 token exchange, RFC 7523 JWT bearer): a
 * partner's token acts for an agent through a binding, with no client secret. Partners
 * here carry their keys inline (keys from discovery or a jwksUri: partner-keys.test.ts).
 */
import { generateKeyPairSync, randomUUID, sign as cryptoSign } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import type { Binding, Partner } from '../../server/src/federation/federation-store.js';
import { createPartnerInput, createBindingInput } from '../../server/src/federation/federation-input.js';
import { adminToken, bearer, createAgent, form, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { claimsOfJwt } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const JWT_TYPE = 'urn:ietf:params:oauth:token-type:jwt';
const INVALID = { error: 'invalid_grant', error_description: 'The subject token is invalid, or does not act for this client.' };
const GITLAB = 'https://gitlab.example.test';
const BUILDKITE = 'https://agent.buildkite.com';

let server: TestServer;
let admin: string;
let federation: FederationService;
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];
let signingKey: PrivateKey;
let publicJwk: Record<string, unknown>;
let platformOrgId: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
  platformOrgId = claimsOfJwt(admin).org_id;
  federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
  const pair = await generateKeyPair('RS256', { extractable: true });
  signingKey = pair.privateKey;
  publicJwk = { ...(await exportJWK(pair.publicKey)), kid: 'partner-key-1', alg: 'RS256', use: 'sig' };
});
afterAll(() => server?.stop());

const nowSeconds = () => Math.floor(Date.now() / 1000);

async function mint(claims: JWTPayload, options: { kid?: string; key?: PrivateKey; alg?: string } = {}): Promise<string> {
  return new SignJWT({ iat: nowSeconds(), exp: nowSeconds() + 300, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: options.alg ?? 'RS256', kid: options.kid ?? 'partner-key-1' })
    .sign(options.key ?? signingKey);
}

async function partner(fields: Record<string, unknown>): Promise<Partner> {
  return federation.createPartner(OPERATOR_CALLER, createPartnerInput.parse({ name: 'partner', keys: { keys: [publicJwk] }, orgIds: [platformOrgId], ...fields }));
}

async function binding(fields: Record<string, unknown>): Promise<Binding> {
  return federation.createBinding(OPERATOR_CALLER, createBindingInput.parse(fields));
}

const exchange = (agentId: string, subjectToken: string, extra: Record<string, string> = {}): Promise<Reply> =>
  send(server, '/api/v1/token', form({ grant_type: TOKEN_EXCHANGE, client_id: agentId, subject_token: subjectToken, subject_token_type: JWT_TYPE, ...extra }));
const jwtBearer = (agentId: string, assertion: string, extra: Record<string, string> = {}): Promise<Reply> =>
  send(server, '/api/v1/token', form({ grant_type: JWT_BEARER, client_id: agentId, assertion, ...extra }));

describe('a GitLab partner and a binding', () => {
  let gitlab: Partner;
  let agent: AgentWithSecret;
  let bound: Binding;
  const gitlabClaims = (overrides: JWTPayload = {}): JWTPayload => ({
    iss: GITLAB,
    aud: 'https://idp.test/federation',
    sub: 'project_path:acme/deploy:ref_type:branch:ref:main',
    namespace_id: '42',
    project_id: '7',
    project_path: 'acme/deploy',
    ref: 'main',
    ref_protected: 'true',
    ...overrides,
  });

  beforeAll(async () => {
    gitlab = await partner({ preset: 'gitlab', issuer: GITLAB, audiences: ['https://idp.test/federation'], requiredClaims: [{ claim: 'namespace_id', op: 'eq', value: '42' }] });
    agent = await createAgent(server, admin, { name: 'deployer', scopes: ['agents:read', 'tokens:read'] });
    bound = await binding({
      partnerId: gitlab.partnerId,
      agentId: agent.agentId,
      conditions: [
        { claim: 'project_id', op: 'eq', value: '7' },
        { claim: 'ref_protected', op: 'eq', value: 'true' },
      ],
      scopes: ['agents:read'],
    });
  });

  it('exchanges a job token for the agent (RFC 8693), with its provenance and the binding\'s scopes', async () => {
    const reply = await exchange(agent.agentId, await mint(gitlabClaims()));
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual({
      access_token: expect.any(String),
      token_type: 'Bearer',
      expires_in: 3600,
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      scope: 'agents:read',
    });
    expect(reply.headers.get('cache-control')).toBe('no-store');
    const claims = claimsOfJwt(reply.body.access_token);
    expect(claims).toMatchObject({ sub: agent.agentId, org_id: platformOrgId, partner_id: gitlab.partnerId, partner_iss: GITLAB, partner_sub: 'project_path:acme/deploy:ref_type:branch:ref:main' });
    const introspection = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: reply.body.access_token })));
    expect(introspection.body).toMatchObject({ active: true, partner_id: gitlab.partnerId });
  });

  it('grants the same through the JWT bearer grant (RFC 7523) when the assertion names this server', async () => {
    const refused = await jwtBearer(agent.agentId, await mint(gitlabClaims()));
    expect(refused.body).toEqual(INVALID); // aud is the partner's, not this server's (§3)
    const reply = await jwtBearer(agent.agentId, await mint(gitlabClaims({ aud: `${server.config.publicUrl}/api/v1/token` })));
    expect(reply.status).toBe(200);
    expect(reply.body.issued_token_type).toBeUndefined();
    expect(reply.body.scope).toBe('agents:read');
  });

  it('answers the same invalid_grant for a fork pipeline, an unknown agent, a wrong aud, a wrong key, an old token and a foreign tenant pin', async () => {
    const other = await generateKeyPair('RS256');
    const attempts = [
      await exchange(agent.agentId, await mint(gitlabClaims({ project_id: '999', project_path: 'mallory/deploy' }))), // a fork's project
      await exchange(agent.agentId, await mint(gitlabClaims({ ref_protected: 'false' }))),
      await exchange(randomUUID(), await mint(gitlabClaims())),
      await exchange(agent.agentId, await mint(gitlabClaims({ aud: 'https://elsewhere.test' }))),
      await exchange(agent.agentId, await mint(gitlabClaims(), { key: other.privateKey })),
      await exchange(agent.agentId, await mint(gitlabClaims({ iat: nowSeconds() - 7200, exp: nowSeconds() + 60 }))),
      await exchange(agent.agentId, await mint(gitlabClaims({ namespace_id: '43' }))), // another namespace on the same instance
      await exchange(agent.agentId, await mint(gitlabClaims({ iss: 'https://gitlab.evil.test' }))),
      await exchange(agent.agentId, await mint(gitlabClaims({ exp: nowSeconds() - 120 }))),
    ];
    expect(attempts.map((reply) => [reply.status, reply.body])).toEqual(attempts.map(() => [400, INVALID]));
  });

  it('refuses alg none and HS256 signed with the public key, and tokens that carry their own key', async () => {
    const header = (h: object) => Buffer.from(JSON.stringify(h)).toString('base64url');
    const payload = Buffer.from(JSON.stringify({ ...gitlabClaims(), iat: nowSeconds(), exp: nowSeconds() + 60 })).toString('base64url');
    const none = `${header({ alg: 'none' })}.${payload}.`;
    const hmacKey = new TextEncoder().encode(JSON.stringify(publicJwk));
    const hs256 = await new SignJWT({ ...gitlabClaims(), iat: nowSeconds(), exp: nowSeconds() + 60 }).setProtectedHeader({ alg: 'HS256', kid: 'partner-key-1' }).sign(hmacKey);
    const withJwk = await new SignJWT({ ...gitlabClaims(), iat: nowSeconds(), exp: nowSeconds() + 60 })
      .setProtectedHeader({ alg: 'RS256', kid: 'partner-key-1', jwk: publicJwk as never })
      .sign(signingKey);
    for (const token of [none, hs256, withJwk, 'not.a.jwt', 'x'.repeat(20_000)]) {
      expect((await exchange(agent.agentId, token)).body).toEqual(INVALID);
    }
  });

  it('requires the RFC 8693 parameters, and refuses an actor token and another requested token type', async () => {
    const token = await mint(gitlabClaims());
    const cases: [Record<string, string>, RegExp][] = [
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token_type: JWT_TYPE }, /subject_token/],
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token: token }, /subject_token_type/],
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:saml2' }, /subject_token_type/],
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token: token, subject_token_type: JWT_TYPE, requested_token_type: 'urn:ietf:params:oauth:token-type:refresh_token' }, /requested_token_type/],
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token: token, subject_token_type: JWT_TYPE, actor_token: token, actor_token_type: JWT_TYPE }, /actor_token/],
      [{ grant_type: TOKEN_EXCHANGE, subject_token: token, subject_token_type: JWT_TYPE }, /client_id/],
      [{ grant_type: TOKEN_EXCHANGE, client_id: agent.agentId, subject_token: token, subject_token_type: JWT_TYPE, resource: 'http://idp.test', audience: 'https://other.test' }, /alias/],
      [{ grant_type: JWT_BEARER, client_id: agent.agentId }, /assertion/],
    ];
    for (const [params, message] of cases) {
      const reply = await send(server, '/api/v1/token', form(params));
      expect(reply.status).toBe(400);
      expect(reply.body.error).toBe('invalid_request');
      expect(reply.body.error_description).toMatch(message);
    }
    // `audience` alone is the token's aud, as `resource` would be.
    const withAudience = await exchange(agent.agentId, await mint(gitlabClaims()), { audience: server.config.publicUrl });
    expect(claimsOfJwt(withAudience.body.access_token).aud).toBe(server.config.publicUrl);
  });

  it('refuses a scope beyond the binding\'s (invalid_scope), and tells a suspended agent only after a binding matched', async () => {
    const scoped = await exchange(agent.agentId, await mint(gitlabClaims()), { scope: 'tokens:read' });
    expect(scoped.body.error).toBe('invalid_scope');
    await send(server, `/api/v1/agents/${agent.agentId}/suspend`, bearer(admin, { method: 'POST' }));
    try {
      const suspended = await exchange(agent.agentId, await mint(gitlabClaims()));
      expect(suspended.status).toBe(403);
      expect(suspended.body.error).toBe('unauthorized_client');
      expect((await exchange(agent.agentId, await mint(gitlabClaims({ project_id: '999' })))).body).toEqual(INVALID);
    } finally {
      await send(server, `/api/v1/agents/${agent.agentId}/reactivate`, bearer(admin, { method: 'POST' }));
    }
  });

  it('revokes the tokens a binding issued when it is deleted, and those of a suspended partner', async () => {
    const other = await createAgent(server, admin, { name: 'short-lived', scopes: ['agents:read'] });
    const shortBinding = await binding({ partnerId: gitlab.partnerId, agentId: other.agentId, conditions: [{ claim: 'project_id', op: 'in', value: ['7', '8'] }], maxTtlSeconds: 300 });
    const granted = await exchange(other.agentId, await mint(gitlabClaims()));
    expect(granted.body.expires_in).toBe(300);
    const token = granted.body.access_token;
    const isActive = async (t: string) => (await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: t })))).body.active;
    expect(await isActive(token)).toBe(true);
    await federation.deleteBinding(OPERATOR_CALLER, shortBinding.bindingId);
    expect(await isActive(token)).toBe(false);

    const fromBound = (await exchange(agent.agentId, await mint(gitlabClaims()))).body.access_token;
    await federation.suspendPartner(OPERATOR_CALLER, gitlab.partnerId);
    expect(await isActive(fromBound)).toBe(false);
    expect((await exchange(agent.agentId, await mint(gitlabClaims()))).body).toEqual(INVALID);
    await federation.reactivatePartner(OPERATOR_CALLER, gitlab.partnerId);
    expect(await isActive(fromBound)).toBe(false);
    expect((await exchange(agent.agentId, await mint(gitlabClaims()))).status).toBe(200);
    expect(bound.bindingId).toBeDefined();
  });
});

describe('a Buildkite partner: one issuer for every Buildkite customer', () => {
  it('acts only for the pinned organization, and spends each jti once', async () => {
    const buildkite = await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }] });
    expect(buildkite).toMatchObject({ issuer: BUILDKITE, singleUseJti: true });
    const agent = await createAgent(server, admin, { name: 'bk', scopes: ['agents:read'] });
    await binding({ partnerId: buildkite.partnerId, agentId: agent.agentId, conditions: [{ claim: 'pipeline_slug', op: 'glob', value: 'deploy-*' }] });
    const claims = (overrides: JWTPayload = {}): JWTPayload => ({ iss: BUILDKITE, aud: 'https://idp.test', sub: 'organization:acme:pipeline:deploy-web', organization_slug: 'acme', pipeline_slug: 'deploy-web', ...overrides });
    const token = await mint(claims());
    expect((await exchange(agent.agentId, token)).status).toBe(200);
    expect((await exchange(agent.agentId, token)).body).toEqual(INVALID); // replayed
    expect((await exchange(agent.agentId, await mint(claims({ organization_slug: 'mallory' })))).body).toEqual(INVALID); // another Buildkite customer
    expect((await exchange(agent.agentId, await mint(claims({ pipeline_slug: 'build' })))).body).toEqual(INVALID);
    const noJti = await new SignJWT({ ...claims(), iat: nowSeconds(), exp: nowSeconds() + 60 }).setProtectedHeader({ alg: 'RS256', kid: 'partner-key-1' }).sign(signingKey);
    expect((await exchange(agent.agentId, noJti)).body).toEqual(INVALID);
  });

  it('spends a single-use token whose exp is absurdly far off, and remembers it while it can be accepted', async () => {
    const buildkite = await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }] });
    const agent = await createAgent(server, admin, { name: 'bk-far', scopes: ['agents:read'] });
    await binding({ partnerId: buildkite.partnerId, agentId: agent.agentId, conditions: [{ claim: 'pipeline_slug', op: 'eq', value: 'deploy-web' }] });
    const jti = randomUUID();
    // Far past any timestamp PostgreSQL holds: remembered until iat + the partner's token age instead.
    const token = await mint({ iss: BUILDKITE, aud: 'https://idp.test', sub: 'organization:acme:pipeline:deploy-web', organization_slug: 'acme', pipeline_slug: 'deploy-web', jti, exp: 1e15 });
    const replies = await Promise.all([exchange(agent.agentId, token), exchange(agent.agentId, token)]);
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, 400]);
    const spent = await server.deps.knex('github_used_jtis').where({ jti: `${BUILDKITE}#${jti}` }).first();
    const rememberedFor = new Date(spent.expires_at).getTime() / 1000 - nowSeconds();
    expect(rememberedFor).toBeGreaterThan(buildkite.maxTokenAgeSeconds);
    expect(rememberedFor).toBeLessThanOrEqual(buildkite.maxTokenAgeSeconds + 60);
  });

  it('spends a token whose grant is refused after its binding matched: it cannot be retried', async () => {
    const buildkite = await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }] });
    const agent = await createAgent(server, admin, { name: 'bk-spent', scopes: ['agents:read'] });
    await binding({ partnerId: buildkite.partnerId, agentId: agent.agentId, conditions: [{ claim: 'pipeline_slug', op: 'eq', value: 'deploy-web' }] });
    const claims = { iss: BUILDKITE, aud: 'https://idp.test', sub: 'organization:acme:pipeline:deploy-web', organization_slug: 'acme', pipeline_slug: 'deploy-web' };
    const refused = await mint(claims);
    expect((await exchange(agent.agentId, refused, { scope: 'tokens:read' })).body).toMatchObject({ error: 'invalid_scope' });
    expect((await exchange(agent.agentId, refused)).body).toEqual(INVALID); // spent by the refusal
    const reasons = await server.deps.knex('audit_events').where({ agent_id: agent.agentId, type: 'federation.exchange.refused' }).orderBy('id').pluck('data');
    expect(reasons.map((data: { reason: string }) => data.reason)).toEqual(['scope tokens:read not allowed', 'jti replayed']);
  });

  it('cannot be created without its organization pin', async () => {
    await expect(partner({ preset: 'buildkite', audiences: ['https://idp.test'] })).rejects.toThrow(/organization_slug/);
  });
});

describe('a Kubernetes partner with an ES256 key, conditions by JSON Pointer', () => {
  it('binds a service account by namespace and name', async () => {
    const pair = await generateKeyPair('ES256', { extractable: true });
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'cluster-1' };
    const issuer = 'https://kubernetes.default.svc.cluster.local';
    const k8s = await partner({ preset: 'kubernetes', issuer, keys: { keys: [jwk] }, audiences: ['sentryagent'] });
    const agent = await createAgent(server, admin, { name: 'pod', scopes: ['agents:read'] });
    await binding({
      partnerId: k8s.partnerId,
      agentId: agent.agentId,
      conditions: [
        { claim: '/kubernetes.io/namespace', op: 'eq', value: 'payments' },
        { claim: 'sub', op: 'eq', value: 'system:serviceaccount:payments:worker' },
      ],
    });
    const claims = (namespace: string) => ({
      iss: issuer,
      aud: 'sentryagent',
      sub: `system:serviceaccount:${namespace}:worker`,
      'kubernetes.io': { namespace, serviceaccount: { name: 'worker' } },
    });
    const sign = (c: JWTPayload) => mint(c, { key: pair.privateKey, kid: 'cluster-1', alg: 'ES256' });
    expect((await exchange(agent.agentId, await sign(claims('payments')))).status).toBe(200);
    expect((await exchange(agent.agentId, await sign(claims('default')))).body).toEqual(INVALID);
  });
});

describe('refusals before the signature verifies', () => {
  it('are counted, attributed to no tenant, and never audited against the agent named', async () => {
    const agent = await createAgent(server, admin, { name: 'victim', scopes: ['agents:read'] });
    const before = await server.deps.knex('audit_events').where({ agent_id: agent.agentId }).count<{ count: string }[]>({ count: '*' });
    for (const token of ['junk', 'a.b.c']) expect((await exchange(agent.agentId, token)).body).toEqual(INVALID);
    const after = await server.deps.knex('audit_events').where({ agent_id: agent.agentId }).count<{ count: string }[]>({ count: '*' });
    expect(after).toEqual(before);
    const counted = await server.deps.knex('rate_limit_windows').where('client_id', 'like', 'oidc-unverified:reason:token_exchange:%');
    expect(counted.length).toBeGreaterThan(0);
  });
});

describe('hardening', () => {
  const BK = (overrides: JWTPayload = {}): JWTPayload => ({ iss: BUILDKITE, aud: 'https://idp.test', sub: 'organization:acme:pipeline:ship', organization_slug: 'acme', pipeline_slug: 'ship', ...overrides });

  it('spends a jti per issuer: a token spent through one partner is spent for every partner of its issuer', async () => {
    const pin = [{ claim: 'organization_slug', op: 'eq', value: 'acme' }];
    const [first, second] = [await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: pin }), await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: pin })];
    const [one, two] = [await createAgent(server, admin, { name: 'one', scopes: ['agents:read'] }), await createAgent(server, admin, { name: 'two', scopes: ['agents:read'] })];
    await binding({ partnerId: first.partnerId, agentId: one.agentId, conditions: [{ claim: 'pipeline_slug', op: 'eq', value: 'ship' }] });
    await binding({ partnerId: second.partnerId, agentId: two.agentId, conditions: [{ claim: 'pipeline_slug', op: 'eq', value: 'ship' }] });
    const token = await mint(BK());
    expect((await exchange(one.agentId, token)).status).toBe(200);
    expect((await exchange(two.agentId, token)).body).toEqual(INVALID);
  });

  it('refuses bindings and pins that name nothing: a glob of stars alone, or a Kubernetes service account name without its namespace', async () => {
    const bk = await partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }] });
    const agent = await createAgent(server, admin, { name: 'named', scopes: ['agents:read'] });
    await expect(binding({ partnerId: bk.partnerId, agentId: agent.agentId, conditions: [{ claim: 'pipeline_slug', op: 'glob', value: '**' }] })).rejects.toThrow(/must put a condition/);
    await expect(partner({ preset: 'buildkite', audiences: ['https://idp.test'], requiredClaims: [{ claim: 'organization_slug', op: 'glob', value: '*' }] })).rejects.toThrow(/organization_slug/);
    const k8s = await partner({ preset: 'kubernetes', issuer: 'https://cluster.example.test', audiences: ['idp'] });
    await expect(binding({ partnerId: k8s.partnerId, agentId: agent.agentId, conditions: [{ claim: '/kubernetes.io/serviceaccount/name', op: 'eq', value: 'deployer' }] })).rejects.toThrow(/must put a condition/);
  });

  it('writes nothing to the log of an organization whose agent has no binding to the partner, however often it is named', async () => {
    await partner({ preset: 'custom', issuer: 'https://noisy.example.test', audiences: ['https://idp.test'] });
    const victim = await createAgent(server, admin, { name: 'victim-of-noise', scopes: ['agents:read'] });
    for (let i = 0; i < 3; i += 1) {
      expect((await exchange(victim.agentId, await mint({ iss: 'https://noisy.example.test', aud: 'https://idp.test', sub: 'x' }))).body).toEqual(INVALID);
    }
    const rows = await server.deps.knex('audit_events').where({ agent_id: victim.agentId, type: 'federation.exchange.refused' });
    expect(rows).toEqual([]);
  });
});

describe('signatures, checked by node:crypto for every algorithm a partner may use', () => {
  const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'EdDSA'] as const;

  it.each(ALGORITHMS)('%s: grants a token signed by the partner key, refuses one signed by another key of the same kind', async (alg) => {
    const [pair, other] = [await generateKeyPair(alg, { extractable: true }), await generateKeyPair(alg, { extractable: true })];
    const issuer = `https://${alg.toLowerCase()}.example.test`;
    const p = await partner({ preset: 'custom', issuer, algorithms: [alg], keys: { keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k' }] }, audiences: ['idp'] });
    const agent = await createAgent(server, admin, { name: `by-${alg}`, scopes: ['agents:read'] });
    await binding({ partnerId: p.partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'job' }] });
    const claims = { iss: issuer, aud: 'idp', sub: 'job' };
    expect((await exchange(agent.agentId, await mint(claims, { key: pair.privateKey, kid: 'k', alg }))).status).toBe(200);
    expect((await exchange(agent.agentId, await mint(claims, { key: other.privateKey, kid: 'k', alg }))).body).toEqual(INVALID);
    // A kid the partner does not have, and (for a partner with one key) no kid at all: the key is found by its kind.
    expect((await exchange(agent.agentId, await mint(claims, { key: pair.privateKey, kid: 'nope', alg }))).body).toEqual(INVALID);
  });

  it('refuses an RSA key under 2048 bits, and a token signed with one alg that names another', async () => {
    // jose will not sign with it: node:crypto does.
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const signSmall = (claims: JWTPayload) => {
      const input = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: 'small' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iat: nowSeconds(), exp: nowSeconds() + 300, ...claims })).toString('base64url')}`;
      return `${input}.${cryptoSign('sha256', Buffer.from(input), small.privateKey).toString('base64url')}`;
    };
    const issuer = 'https://small-key.example.test';
    const p = await partner({ preset: 'custom', issuer, algorithms: ['RS256', 'PS256'], keys: { keys: [{ ...small.publicKey.export({ format: 'jwk' }), kid: 'small' }, publicJwk] }, audiences: ['idp'] });
    const agent = await createAgent(server, admin, { name: 'small-key', scopes: ['agents:read'] });
    await binding({ partnerId: p.partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'job' }] });
    const claims = { iss: issuer, aud: 'idp', sub: 'job' };
    expect((await exchange(agent.agentId, signSmall(claims))).body).toEqual(INVALID);
    expect((await exchange(agent.agentId, await mint(claims))).status).toBe(200); // the 2048-bit key of the same partner
    // An RS256 signature presented as PS256.
    const rs256 = await mint(claims);
    const [, payload, signature] = rs256.split('.');
    const relabelled = `${Buffer.from(JSON.stringify({ alg: 'PS256', kid: 'partner-key-1' })).toString('base64url')}.${payload}.${signature}`;
    expect((await exchange(agent.agentId, relabelled)).body).toEqual(INVALID);
  });

  it('answers invalid_grant, not a server error, for a signed sub or jti PostgreSQL cannot store', async () => {
    const issuer = 'https://nul.example.test';
    const p = await partner({ preset: 'custom', issuer, audiences: ['idp'], singleUseJti: true });
    const agent = await createAgent(server, admin, { name: 'nul', scopes: ['agents:read'] });
    await binding({ partnerId: p.partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'ok' }] });
    expect((await exchange(agent.agentId, await mint({ iss: issuer, aud: 'idp', sub: 'a\u0000b' }))).body).toEqual(INVALID);
    expect((await exchange(agent.agentId, await mint({ iss: issuer, aud: 'idp', sub: 'ok', jti: 'j\u0000' }))).body).toEqual(INVALID);
    expect((await exchange(agent.agentId, await mint({ iss: issuer, aud: 'idp', sub: 'ok' }))).status).toBe(200);
  });

  it('spends a single-use token once when it is sent many times at once', async () => {
    const issuer = 'https://burst.example.test';
    const p = await partner({ preset: 'custom', issuer, audiences: ['idp'], singleUseJti: true });
    const agent = await createAgent(server, admin, { name: 'burst', scopes: ['agents:read'] });
    await binding({ partnerId: p.partnerId, agentId: agent.agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'job' }] });
    const token = await mint({ iss: issuer, aud: 'idp', sub: 'job' });
    const replies = await Promise.all(Array.from({ length: 12 }, () => exchange(agent.agentId, token)));
    expect(replies.map((reply) => reply.status).sort()).toEqual([200, ...Array(11).fill(400)]);
  });
});
