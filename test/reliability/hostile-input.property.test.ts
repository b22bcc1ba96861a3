/**
 * Property-based hostile input over every endpoint, over raw sockets so that nothing is
 * cleaned up on the way: random and deeply nested bodies, random bytes, wrong and odd
 * content types and charsets, form-encoding tricks, every kind of Authorization header,
 * hostile path parameters and query strings, and GitHub ID tokens signed by the trusted
 * issuer with arbitrary claims. Every answer must pass `checkSoundReply` (no 5xx, the
 * documented error shape, nothing internal, an OpenAPI-documented reply). Requests go both
 * unauthenticated and with the admin's token, so that they reach the validation behind
 * authentication. fast-check prints the seed and the shrunk request of any failure.
 * (hostile-fields.property.test.ts sends valid bodies with one field made odd.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import { openApiDocument } from '../support/openapi.js';
import { rawRequest, type RawRequest } from '../support/raw-http.js';
import { checkSoundReply, isPlainTarget } from '../support/sound-reply.js';
import { AUDIENCE, ENDPOINTS, FIXTURE, REPOSITORY, SignedIdToken, encodeBody, fillTemplate, naturalType, expectUnharmed, startFuzzWorld, targetParams, type Endpoint, type FuzzWorld } from '../support/fuzz-world.js';
import {
  ABSENT,
  anyBody,
  anyToken,
  authorizationHeaders,
  contentTypes,
  extraHeaders,
  field,
  forgedJwt,
  hostileString,
  hostileValue,
  isoDateTime,
  percentEncode,
  scopeList,
  scopeString,
  text,
} from '../support/hostile-input.js';

let world: FuzzWorld;
beforeAll(async () => {
  world = await startFuzzWorld();
});
afterAll(() => world?.stop());

/** Each claim: mostly the fixture's value (so that many tokens are granted), else a near miss or any text. */
const claimValue = (name: string, ...nearMisses: string[]) =>
  fc.oneof({ weight: 6, arbitrary: fc.constant(FIXTURE[name]) }, ...(nearMisses.length ? [{ weight: 1, arbitrary: fc.constantFrom(...nearMisses) }] : []), { weight: 1, arbitrary: text(30) });
const CLAIM_VALUES: Record<string, fc.Arbitrary<unknown>> = {
  repository: claimValue('repository', 'OCTO-ORG/Octo-Repo', 'octo-org/other', 'octo-org/octo-repo/x'),
  repository_id: claimValue('repository_id', '1', '0', '99999999999999999999999'),
  repository_owner_id: claimValue('repository_owner_id', '2'),
  ref: claimValue('ref', 'refs/tags/main', 'refs/heads/feature', 'refs/pull/1/merge', ''),
  environment: fc.oneof(fc.constant(ABSENT), fc.constantFrom('production', ''), text(20)),
  workflow_ref: claimValue('workflow_ref'),
  job_workflow_ref: claimValue('job_workflow_ref'),
  event_name: claimValue('event_name', 'pull_request', 'pull_request_target', 'workflow_run', 'issue_comment'),
  sha: claimValue('sha'),
  run_id: claimValue('run_id'),
  actor: claimValue('actor'),
  sub: claimValue('sub'),
};

const signedIdToken: fc.Arbitrary<SignedIdToken> = fc
  .tuple(
    fc.record(Object.fromEntries(Object.entries(CLAIM_VALUES).map(([name, valid]) => [name, field(valid)])), { requiredKeys: [] }),
    // The envelope is mostly left valid so that most tokens get to policy matching.
    fc.oneof(
      { weight: 4, arbitrary: fc.constant({}) },
      {
        weight: 1,
        arbitrary: fc.record(
          { iss: hostileValue, aud: fc.oneof(hostileValue, fc.constant([AUDIENCE, 'other'])), jti: hostileValue, exp: hostileValue, iat: hostileValue, nbf: hostileValue },
          { requiredKeys: [] },
        ),
      },
    ),
  )
  .map(([claims, envelope]) => new SignedIdToken({ ...FIXTURE, ...claims, ...envelope }));

const idToken = fc.oneof(
  { weight: 4, arbitrary: signedIdToken },
  { weight: 1, arbitrary: forgedJwt },
  { weight: 1, arbitrary: hostileString },
  { weight: 1, arbitrary: fc.constantFrom('x'.repeat(17_000), 'a.b.c', 'a..', '..', 'e30.e30.') },
);

/** The fields each body-taking endpoint knows, each valid, hostile or left out. */
function fieldsOf(endpoint: Endpoint): fc.Arbitrary<Record<string, unknown>> {
  const agentIds = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(world.agentId, world.agentId.toUpperCase()) }, { weight: 1, arbitrary: fc.uuid() });
  // Mostly scopes the agent holds, so that requests get past the scope check; scopeString has the rest.
  const heldScopes = fc.oneof({ weight: 3, arbitrary: fc.subarray(['agents:read', 'tokens:read']).map((scopes) => scopes.join(' ')) }, { weight: 1, arbitrary: scopeString });
  switch (endpoint.path) {
    case '/api/v1/token':
      return fc.record({
        grant_type: field(fc.constant('client_credentials')),
        client_id: field(agentIds),
        client_secret: field(fc.oneof(fc.constant(world.agentSecret), fc.constant(`${world.agentSecret}x`))),
        scope: field(heldScopes),
      });
    case '/api/v1/token/introspect':
    case '/api/v1/token/revoke':
      return fc.record({ token: field(anyToken(world)), token_type_hint: field(fc.constantFrom('access_token', 'refresh_token')) });
    case '/api/v1/oidc/token':
      return fc.record({ token: field(idToken), agentId: field(agentIds), scope: field(heldScopes) });
    case '/api/v1/oidc/register':
      return fc.record({
        token: field(idToken),
        name: field(text(30)),
        description: field(text(50)),
        scopes: field(fc.oneof({ weight: 3, arbitrary: fc.subarray(['agents:read']) }, { weight: 1, arbitrary: scopeList }, { weight: 1, arbitrary: scopeString })),
      });
    case '/api/v1/oidc/trust-policies':
      return fc.record({
        provider: field(fc.constant('github')),
        repository: field(fc.constantFrom(REPOSITORY, 'a/b', 'A-b/c.d_e')),
        agentId: field(fc.constant(world.agentId)),
        branch: field(fc.oneof(fc.constantFrom('main', 'release/v1'), text(20))),
        environment: field(text(20)),
        workflowRef: field(fc.oneof(fc.constant('octo-org/octo-repo/.github/workflows/a.yml@refs/heads/main'), text(30).map((tail) => `o/r/${tail}@x`))),
        jobWorkflowRef: field(text(30).map((tail) => `o/r/w${tail}@refs/heads/main`)),
        repositoryId: field(fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 20n - 1n }).map(String), fc.integer({ min: 1 }))),
        repositoryOwnerId: field(fc.oneof(fc.nat().map((id) => String(id + 1)), fc.integer({ min: 1 }))),
        allowedEvents: field(fc.subarray(['pull_request_target', 'workflow_run', 'issue_comment'])),
        scopes: field(fc.subarray(['agents:read', 'tokens:read'])),
      });
    case '/api/v1/orgs':
    case '/api/v1/orgs/{orgId}':
      return fc.record({
        slug: field(fc.oneof(fc.stringMatching(/^[a-z0-9-]{2,20}$/), text(20))),
        name: field(text(40)),
        limits: field(
          fc.record({
            monthlyTokens: field(fc.oneof(fc.integer({ min: 1, max: 1_000_000 }), fc.constant(null), fc.integer())),
            maxAgents: field(fc.oneof(fc.integer({ min: 1, max: 1000 }), fc.constant(null))),
          }),
        ),
      });
    case '/api/v1/federation/partners':
    case '/api/v1/federation/partners/{partnerId}': {
      const condition = fc.record({
        claim: field(fc.oneof(fc.constantFrom('sub', 'organization_slug', '/kubernetes.io/namespace', '/a~1b'), text(20))),
        op: field(fc.constantFrom('eq', 'in', 'glob', 'ne')),
        value: field(fc.oneof(fc.constantFrom('acme', 'prod-*', '**'), fc.array(text(10), { maxLength: 3 }), text(20))),
      });
      const url = fc.oneof(fc.constantFrom('https://ci.example.com', 'http://localhost:8080', 'http://ci.example.com', 'https://a.test/?q=1', 'https://u:p@a.test'), text(30));
      const jwk = fc.record({
        kty: field(fc.constantFrom('RSA', 'EC', 'OKP', 'oct')),
        kid: field(text(10)),
        n: field(text(20)),
        e: field(fc.constant('AQAB')),
        d: field(text(10)),
        x5c: field(fc.array(text(10), { maxLength: 2 })),
      });
      return fc.record({
        preset: field(fc.constantFrom('github', 'gitlab', 'buildkite', 'circleci', 'kubernetes', 'spiffe', 'sentryagent', 'custom', 'other')),
        name: field(text(40)),
        issuer: field(url),
        jwksUri: field(fc.oneof(url, fc.constant(null))),
        keys: field(fc.oneof(fc.record({ keys: field(fc.array(jwk, { maxLength: 3 })) }), fc.constant(null))),
        audiences: field(fc.array(fc.oneof(fc.constant('https://idp.test'), text(20)), { maxLength: 3 })),
        algorithms: field(fc.subarray(['RS256', 'ES256', 'EdDSA', 'HS256', 'none'])),
        maxTokenAgeSeconds: field(fc.oneof(fc.integer({ min: 60, max: 86_400 }), fc.integer())),
        singleUseJti: field(fc.boolean()),
        requiredClaims: field(fc.array(condition, { maxLength: 3 })),
        orgIds: field(fc.oneof(fc.constant([world.platformOrgId]), fc.array(fc.uuid(), { maxLength: 2 }))),
      });
    }
    case '/api/v1/federation/partners/{partnerId}/evaluate':
    case '/api/v1/oidc/trust-policies/evaluate':
      return fc.record({
        token: field(fc.oneof(idToken, text(40))),
        claims: field(fc.oneof(fc.constant({ repository: REPOSITORY, ref: 'refs/heads/main', event_name: 'push', sub: 'repo:acme/app' }), fc.dictionary(text(10), fc.oneof(text(10), fc.integer())))),
        agentId: field(agentIds),
      });
    case '/api/v1/federation/bindings':
      return fc.record({
        partnerId: field(fc.oneof(fc.constant(world.partnerId), fc.uuid())),
        agentId: field(agentIds),
        conditions: field(
          fc.array(
            fc.record({
              claim: field(fc.oneof(fc.constantFrom('sub', 'ref', '/x/y'), text(20))),
              op: field(fc.constantFrom('eq', 'in', 'glob')),
              value: field(fc.oneof(text(20), fc.array(text(10), { maxLength: 3 }))),
            }),
            { maxLength: 3 },
          ),
        ),
        scopes: field(fc.subarray(['agents:read', 'tokens:read', 'admin:orgs'])),
        maxTtlSeconds: field(fc.oneof(fc.integer({ min: 60, max: 86_400 }), fc.integer())),
      });
    case '/api/v1/agents':
    case '/api/v1/agents/{agentId}':
      return fc.record({
        name: field(text(40)),
        description: field(fc.oneof(text(60), fc.constant(null))),
        scopes: field(scopeList),
      });
    default:
      return fc.constant({});
  }
}

interface Plan {
  readonly endpoint: Endpoint;
  readonly method: string;
  readonly target: string;
  readonly headers: [string, string][];
  readonly contentType: string | undefined | 'natural';
  readonly body: { readonly fields: Record<string, unknown>; readonly as: 'json' | 'form'; readonly repeat?: string } | string | Buffer | undefined;
  readonly framing: 'length' | 'chunked';
}

interface PlanOptions {
  readonly isAdmin: boolean;
  readonly path?: fc.Arbitrary<string>;
  readonly query?: fc.Arbitrary<string>;
  readonly body?: 'fields' | 'any';
  readonly method?: 'own' | 'any';
  readonly contentType?: 'natural' | 'any';
}

function planFor(endpoint: Endpoint, options: PlanOptions): fc.Arbitrary<Plan> {
  const defaultAs: 'json' | 'form' = endpoint.body === 'form' ? 'form' : 'json';
  const fieldsBody = fc.record({
    fields: fieldsOf(endpoint),
    as: endpoint.body === 'json-or-form' ? fc.constantFrom<'json' | 'form'>('json', 'form') : fc.oneof({ weight: 5, arbitrary: fc.constant(defaultAs) }, { weight: 1, arbitrary: fc.constantFrom<'json' | 'form'>('json', 'form') }),
    repeat: fc.oneof({ weight: 6, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: fc.constantFrom('token', 'client_id', 'client_secret', 'grant_type', 'scope', 'agentId') }),
  });
  const body: fc.Arbitrary<Plan['body']> =
    endpoint.body === 'none'
      ? fc.oneof({ weight: 4, arbitrary: fc.constant(undefined) }, { weight: 1, arbitrary: anyBody })
      : options.body === 'fields'
        ? fieldsBody
        : fc.oneof({ weight: 3, arbitrary: fieldsBody }, { weight: 2, arbitrary: anyBody }, { weight: 1, arbitrary: fc.constant(undefined) });
  // The token endpoint takes client credentials (in the body here), not the admin's Bearer token.
  const authorization = options.isAdmin
    ? fc.constant<[string, string][]>(endpoint.path === '/api/v1/token' ? [] : [['Authorization', `Bearer ${world.adminToken}`]])
    : authorizationHeaders(world);
  const path = options.path ?? fc.constant(fillTemplate(endpoint.path, targetParams(world)));
  return fc.record({
    endpoint: fc.constant(endpoint),
    method:
      options.method === 'own'
        ? fc.constant(endpoint.method)
        : fc.oneof({ weight: 8, arbitrary: fc.constant(endpoint.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'HEAD', 'TRACE') }),
    target: fc.tuple(path, options.query ?? fc.constant('')).map(([p, q]) => p + q),
    headers: fc.tuple(authorization, extraHeaders).map(([auth, extra]) => [...auth, ...extra]),
    contentType:
      options.contentType === 'natural'
        ? fc.constant<'natural'>('natural')
        : fc.oneof({ weight: 10, arbitrary: fc.constant<'natural'>('natural') }, { weight: 1, arbitrary: contentTypes }, { weight: 1, arbitrary: fc.constant(undefined) }),
    body,
    framing: fc.constantFrom<'length' | 'chunked'>('length', 'length', 'chunked'),
  });
}

async function materialize(plan: Plan): Promise<RawRequest> {
  const isFields = plan.body !== undefined && typeof plan.body === 'object' && !Buffer.isBuffer(plan.body);
  const as = isFields ? (plan.body as { as: 'json' | 'form' }).as : plan.endpoint.body === 'form' ? 'form' : 'json';
  const body = isFields
    ? await encodeBody(world.github, (plan.body as { fields: Record<string, unknown> }).fields, as, (plan.body as { repeat?: string }).repeat)
    : (plan.body as string | Buffer | undefined);
  const contentType = plan.contentType === 'natural' ? (body === undefined ? undefined : naturalType(as)) : plan.contentType;
  const headers: [string, string][] = [...plan.headers, ...(contentType === undefined ? [] : [['Content-Type', contentType] as [string, string]])];
  return { method: plan.method, target: plan.target, headers, body, framing: plan.framing };
}

async function sendPlan(plan: Plan): Promise<void> {
  const request = await materialize(plan);
  const reply = await rawRequest(world.server.url, request);
  checkSoundReply(request, reply, { documented: isPlainTarget(plan.target) });
}

const RUNS = { ...SEED, numRuns: 200 };
const allPlans = (options: PlanOptions) => fc.constantFrom(...ENDPOINTS).chain((endpoint) => planFor(endpoint, options));

describe('hostile input, property-based: every answer is a documented 4xx or a valid success', () => {
  it('covers every operation of the OpenAPI document', () => {
    const documented = Object.entries(openApiDocument.paths as Record<string, Record<string, unknown>>).flatMap(([path, operations]) =>
      Object.keys(operations)
        .filter((method) => ['get', 'post', 'put', 'patch', 'delete'].includes(method))
        .map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(ENDPOINTS.map((endpoint) => `${endpoint.method} ${endpoint.path}`).sort()).toEqual(documented.sort());
  });

  it('every method on every path, with and without the admin token', async () => {
    const paths = [...new Set(ENDPOINTS.map((endpoint) => fillTemplate(endpoint.path, targetParams(world))))];
    for (const target of paths) {
      for (const method of ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH']) {
        // Read-only: a method that would change the target agent or policy is sent without credentials.
        const isSafe = ['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PROPFIND', 'SEARCH'].includes(method);
        for (const headers of isSafe ? [[], [['Authorization', `Bearer ${world.adminToken}`]]] : [[]]) {
          const request: RawRequest = { method, target, headers: headers as [string, string][] };
          checkSoundReply(request, await rawRequest(world.server.url, request), { documented: true });
        }
      }
    }
  });

  it('any request to any endpoint, with any or no credentials', async () => {
    await fc.assert(fc.asyncProperty(allPlans({ isAdmin: false }), sendPlan), { ...SEED, numRuns: 300 });
  });

  it('any body to any endpoint that takes one, behind the admin token', async () => {
    const withBodies = ENDPOINTS.filter((endpoint) => endpoint.body !== 'none');
    const plans = fc.constantFrom(...withBodies).chain((endpoint) => planFor(endpoint, { isAdmin: true, method: 'own' }));
    await fc.assert(fc.asyncProperty(plans, sendPlan), { ...SEED, numRuns: 300 });
  });

  it('any path parameter: non-UUIDs, injection, unicode, raw bytes, dot segments', async () => {
    const segment = fc.oneof(
      fc.constantFrom(world.target.agentId, world.target.credentialId, world.target.policyId, world.target.agentId.toUpperCase(), `${world.target.agentId}x`, `{${world.target.agentId}}`),
      fc.uuid(),
      hostileString.map(percentEncode),
      fc.constantFrom('..', '.', '%2e%2e', '%2F', '%', '%zz', '%00', '%ff', '%c0%af', '%u0041', ';', '*', '%3F', '%23', '\\', 'é', 'x'.repeat(5_000)),
      fc.uint8Array({ minLength: 1, maxLength: 12 }).map((bytes) => Buffer.from(bytes).toString('latin1').replace(/[\s?#/]/g, '')),
    );
    const templated = ENDPOINTS.filter((endpoint) => endpoint.path.includes('{'));
    const plans = fc.constantFrom(...templated).chain((endpoint) =>
      planFor(endpoint, {
        isAdmin: true,
        method: 'own',
        body: 'fields',
        path: fc.tuple(segment, segment, segment).map(([agentId, credentialId, id]) => fillTemplate(endpoint.path, { agentId, credentialId, id })),
      }),
    );
    await fc.assert(fc.asyncProperty(plans, sendPlan), RUNS);
  });

  it('any query string: repeats, unknown keys, odd cursors, dates out of range', async () => {
    const agentsCursor = fc
      .record({ createdAt: fc.oneof({ weight: 4, arbitrary: isoDateTime }, { weight: 1, arbitrary: hostileValue }), agentId: field(fc.uuid()) })
      .map((cursor) => Buffer.from(JSON.stringify(cursor, (_, value) => (value === ABSENT ? undefined : value))).toString('base64url'));
    const limit = fc.oneof(fc.integer({ min: 1, max: 100 }).map(String), fc.constantFrom('0', '101', '-1', '1e2', '0x10', '1.5', ' 5', ''));
    const keysOf: Record<string, Record<string, fc.Arbitrary<string>>> = {
      '/api/v1/agents': { limit, cursor: agentsCursor, status: fc.constantFrom('active', 'suspended', 'decommissioned') },
      '/api/v1/audit': {
        type: fc.constantFrom('token.issued', 'agent.created', 'x', 'token.issued.'),
        agentId: fc.oneof(fc.constant(world.agentId), fc.uuid()),
        since: isoDateTime,
        limit,
        cursor: fc.bigInt({ min: 1n, max: 10n ** 16n - 1n }).map(String),
      },
      '/api/v1/oidc/trust-policies': { agentId: fc.oneof(fc.constant(world.agentId), fc.uuid()), limit, cursor: fc.uuid() },
      '/api/v1/federation/partners': { limit, cursor: fc.uuid() },
      '/api/v1/federation/bindings': {
        agentId: fc.oneof(fc.constant(world.agentId), fc.uuid()),
        partnerId: fc.oneof(fc.constant(world.partnerId), fc.uuid()),
        orgId: fc.oneof(fc.constant(world.platformOrgId), fc.uuid()),
        limit,
        cursor: fc.uuid(),
      },
    };
    const queryFor = (path: string) =>
      fc
        .tuple(
          fc.record(Object.fromEntries(Object.entries(keysOf[path] ?? {}).map(([name, valid]) => [name, fc.oneof({ weight: 4, arbitrary: valid }, { weight: 1, arbitrary: hostileString }, { weight: 3, arbitrary: fc.constant(ABSENT) })]))),
          fc.oneof(
            { weight: 4, arbitrary: fc.constant(null) },
            { weight: 1, arbitrary: fc.tuple(hostileString, hostileString).map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`) },
            { weight: 1, arbitrary: fc.constantFrom('%', '%zz', 'limit', '=1', '&&', 'limit=1', 'cursor[]=1', 'cursor[a]=1', '__proto__=x') },
          ),
        )
        .map(([known, extra]) => {
          const pairs = Object.entries(known).filter(([, value]) => value !== ABSENT).map(([name, value]) => `${name}=${percentEncode(value as string)}`);
          return `?${[...pairs, ...(extra === null ? [] : [extra])].join('&')}`;
        });
    const gets = ENDPOINTS.filter((endpoint) => endpoint.method === 'GET');
    const lists = gets.filter((endpoint) => endpoint.path in keysOf);
    const plans = fc
      .oneof({ weight: 4, arbitrary: fc.constantFrom(...lists) }, { weight: 1, arbitrary: fc.constantFrom(...gets) })
      .chain((endpoint) => planFor(endpoint, { isAdmin: true, method: 'own', query: queryFor(endpoint.path) }));
    await fc.assert(fc.asyncProperty(plans, sendPlan), RUNS);
  });

  it('GitHub ID tokens signed by the trusted issuer with any claims, and forged ones', async () => {
    const exchanges = ENDPOINTS.filter((endpoint) => endpoint.path.startsWith('/api/v1/oidc/') && !endpoint.path.includes('trust'));
    const plans = fc.constantFrom(...exchanges).chain((endpoint) => planFor(endpoint, { isAdmin: false, method: 'own', body: 'fields', contentType: 'natural' }));
    await fc.assert(fc.asyncProperty(plans, sendPlan), { ...SEED, numRuns: 150 });
  });

  it('client authentication at the token endpoint: Basic, post, both, repeated, garbage', async () => {
    const plans = planFor(ENDPOINTS[0], { isAdmin: false, method: 'own', body: 'fields' });
    await fc.assert(fc.asyncProperty(plans, sendPlan), RUNS);
  });

  it('raw bytes: invalid UTF-8, NUL and latin1 in the target, header values and bodies', async () => {
    const bytes = fc.uint8Array({ minLength: 1, maxLength: 24 }).map((array) => Buffer.from(array));
    const invalidUtf8 = fc.constantFrom(...[[0xff], [0xc3, 0x28], [0xe2, 0x82], [0xf0, 0x28, 0x8c, 0x28], [0xed, 0xa0, 0x80], [0xc0, 0xaf], [0x00]].map((array) => Buffer.from(array)));
    const raw = fc.record({
      endpoint: fc.constantFrom(...ENDPOINTS),
      where: fc.constantFrom('target', 'query', 'authorization', 'content-type', 'header', 'body'),
      inserted: fc.oneof(bytes, invalidUtf8),
    });
    const withBytes = (before: string, inserted: Buffer, after = '') => Buffer.concat([Buffer.from(before), inserted, Buffer.from(after)]);
    await fc.assert(
      fc.asyncProperty(raw, async ({ endpoint, where, inserted }) => {
        const path = fillTemplate(endpoint.path, targetParams(world));
        const as = endpoint.body === 'form' ? 'form' : 'json';
        // A body the endpoint could accept but for the inserted bytes (a value left open for them).
        const [open, close] = endpoint.path === '/api/v1/token' ? [`grant_type=client_credentials&client_id=${world.agentId}&client_secret=`, ''] : as === 'form' ? ['token=', ''] : ['{"name":"', '"}'];
        const hasBody = endpoint.body !== 'none';
        const headers: [string, string | Buffer][] = [['Authorization', where === 'authorization' ? withBytes('Bearer ', inserted) : `Bearer ${world.adminToken}`]];
        if (hasBody || where === 'content-type') headers.push(['Content-Type', where === 'content-type' ? withBytes(`${naturalType(as)}; charset=`, inserted) : naturalType(as)]);
        if (where === 'header') headers.push(['X-Request-Id', inserted]);
        const request: RawRequest = {
          method: endpoint.method,
          target: where === 'target' ? withBytes(path, inserted) : where === 'query' ? withBytes(`${path}?limit=`, inserted) : path,
          headers,
          body: !hasBody ? undefined : where === 'body' ? withBytes(open, inserted, close) : `${open}x${close}`,
        };
        checkSoundReply(request, await rawRequest(world.server.url, request));
      }),
      RUNS,
    );
  });

  it('leaves the server healthy, the admin able to act, the audit chain intact and no error logged', () => expectUnharmed(world));
});
