/**
 * Valid requests with one part made odd: one field of a body, or one claim of a GitHub ID
 * token signed by the trusted issuer. Where hostile-input.property.test.ts mostly meets the
 * first check, these requests carry a single bad value past every other check, into the
 * services and the database. First the valid requests themselves (so that each odd one
 * differs from a success in one place only), then a sweep of the characters that break
 * text handling (NUL, a lone surrogate, a control character, a bidi override) through every
 * text field and claim, then a property over any value in any one place. Every answer must
 * pass `checkSoundReply`.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import { json, send } from '../support/api.js';
import { rawRequest, type RawReply } from '../support/raw-http.js';
import { checkSoundReply } from '../support/sound-reply.js';
import { ENDPOINTS, FIXTURE, REPOSITORY, SignedIdToken, encodeBody, expectUnharmed, fillTemplate, naturalType, startFuzzWorld, targetParams, type Endpoint, type FuzzWorld } from '../support/fuzz-world.js';
import { ABSENT, hostileValue, isoDateTime, percentEncode, surprise, text } from '../support/hostile-input.js';

let world: FuzzWorld;
beforeAll(async () => {
  world = await startFuzzWorld();
});
afterAll(() => world?.stop());

/** The string claims the server reads from a GitHub ID token. */
const CLAIMS = [
  'iss', 'sub', 'jti', 'repository', 'repository_id', 'repository_owner', 'repository_owner_id', 'ref', 'ref_type', 'sha',
  'environment', 'workflow', 'workflow_ref', 'job_workflow_ref', 'event_name', 'run_id', 'run_number', 'run_attempt', 'actor', 'actor_id',
];
const UNKNOWN_FIELD = '(an unknown field)';

let registrations = 0;
let organizations = 0;

async function agentWithUnboundPolicy(): Promise<string> {
  const agent = await send(world.server, '/api/v1/agents', json('POST', { name: 'sweep-agent', scopes: ['agents:read'] }, world.adminToken));
  const policy = await send(world.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, agentId: agent.body.agentId }, world.adminToken));
  expect([agent.status, policy.status]).toEqual([201, 201]);
  return agent.body.agentId;
}

/** A body each endpoint accepts, sent with the admin's token where one is needed. */
function validBody(endpoint: Endpoint): Record<string, unknown> {
  switch (endpoint.path) {
    case '/api/v1/token':
      return { grant_type: 'client_credentials', client_id: world.agentId, client_secret: world.agentSecret, scope: 'agents:read' };
    case '/api/v1/token/introspect':
      return { token: world.spareTokens[0], token_type_hint: 'access_token' };
    case '/api/v1/token/revoke':
      return { token: world.spareTokens[1], token_type_hint: 'access_token' };
    case '/api/v1/oidc/token':
      return { token: new SignedIdToken({ ...FIXTURE }), agentId: world.agentId, scope: 'agents:read' };
    case '/api/v1/oidc/register':
      // A new name each time: registering a name again answers with the agent registered first.
      return { token: new SignedIdToken({ ...FIXTURE }), name: `registered-${(registrations += 1)}`, description: 'made in CI', scopes: ['agents:read'] };
    case '/api/v1/oidc/trust-policies':
      return {
        provider: 'github',
        repository: REPOSITORY,
        agentId: world.agentId,
        branch: 'release/v1',
        environment: 'production',
        workflowRef: FIXTURE.workflow_ref,
        jobWorkflowRef: FIXTURE.job_workflow_ref,
        repositoryId: FIXTURE.repository_id,
        repositoryOwnerId: FIXTURE.repository_owner_id,
        allowedEvents: ['workflow_run'],
        scopes: ['agents:read'],
      };
    case '/api/v1/agents':
    case '/api/v1/agents/{agentId}':
      return { name: 'fuzzed-agent', description: 'an agent\nover two lines', scopes: ['agents:read'] };
    case '/api/v1/orgs':
      // A new slug each time: a slug is taken once.
      return { slug: `fuzzed-${(organizations += 1)}`, name: 'Fuzzed Org', limits: { monthlyTokens: 1000, maxAgents: 10 } };
    case '/api/v1/orgs/{orgId}':
      return { name: 'Fuzz target', limits: { monthlyTokens: 5000, maxAgents: null } };
    case '/api/v1/federation/partners':
      return {
        preset: 'buildkite',
        name: 'Fuzzed partner',
        issuer: 'https://agent.buildkite.com',
        jwksUri: 'https://agent.buildkite.com/.well-known/jwks',
        audiences: ['https://idp.test'],
        algorithms: ['RS256'],
        maxTokenAgeSeconds: 600,
        singleUseJti: true,
        requiredClaims: [{ claim: 'organization_slug', op: 'eq', value: 'acme' }],
        orgIds: [world.platformOrgId],
      };
    case '/api/v1/federation/partners/{partnerId}':
      return {
        name: 'Fuzz target partner',
        issuer: 'https://ci.example.com',
        keys: { keys: [{ kty: 'EC', kid: 'k1', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] },
        audiences: ['https://idp.test'],
        maxTokenAgeSeconds: 900,
        requiredClaims: [{ claim: 'sub', op: 'glob', value: 'fuzz-*' }],
        orgIds: [world.platformOrgId],
      };
    case '/api/v1/federation/partners/{partnerId}/evaluate':
      return { claims: { sub: 'repo:acme/app', ref: 'main' }, agentId: world.agentId };
    case '/api/v1/oidc/trust-policies/evaluate':
      return { claims: { repository: REPOSITORY, ref: 'refs/heads/main', event_name: 'push' }, agentId: world.agentId };
    case '/api/v1/federation/bindings':
      return {
        partnerId: world.partnerId,
        agentId: world.agentId,
        conditions: [{ claim: 'sub', op: 'eq', value: 'repo:acme/app' }, { claim: 'ref', op: 'in', value: ['main', 'release'] }],
        scopes: ['agents:read'],
        maxTtlSeconds: 600,
      };
    case '/api/v1/webhooks':
      return { url: 'http://127.0.0.1:1/fuzzed', eventTypes: ['agent.created', 'quota.reached'], description: 'Fuzzed hook', enabled: false };
    case '/api/v1/webhooks/{webhookId}':
      return { url: 'http://127.0.0.1:1/fuzz', eventTypes: ['org.suspended'], description: 'Fuzz target hook', enabled: true };
    case '/api/v1/webhooks/{webhookId}/secret/rotate':
      return { gracePeriodSeconds: 60 };
    case '/api/v1/webhooks/{webhookId}/recover':
      return { since: '2020-01-01T00:00:00Z' };
    default:
      throw new Error(`no valid body for ${endpoint.path}`);
  }
}

/** A query each list endpoint accepts; `cursor.createdAt` and `cursor.agentId` are the parts of the agents cursor. */
function validQuery(endpoint: Endpoint): Record<string, unknown> | undefined {
  switch (endpoint.path) {
    case '/api/v1/agents':
      return { limit: '10', status: 'active', 'cursor.createdAt': '2020-01-01T00:00:00.000Z', 'cursor.agentId': world.agentId };
    case '/api/v1/audit':
      return { type: 'token.issued', agentId: world.agentId, since: '2020-01-01T00:00:00Z', limit: '10', cursor: '999999' };
    case '/api/v1/stats':
      return { orgId: world.platformOrgId };
    case '/api/v1/keys':
      return {};
    case '/api/v1/oidc/trust-policies':
      return { agentId: world.agentId, limit: '10', cursor: world.policyId };
    case '/api/v1/federation/partners':
      return { limit: '10', cursor: world.partnerId };
    case '/api/v1/federation/bindings':
      return { agentId: world.agentId, partnerId: world.partnerId, orgId: world.platformOrgId, limit: '10', cursor: world.target.bindingId };
    case '/api/v1/webhooks':
      return { orgId: world.platformOrgId, limit: '10', cursor: world.target.webhookId };
    case '/api/v1/webhooks/{webhookId}/deliveries':
      return { status: 'pending', eventType: 'webhook.test', since: '2020-01-01T00:00:00Z', limit: '10', cursor: '999999' };
    default:
      return undefined;
  }
}

interface Site {
  readonly endpoint: Endpoint;
  /** A body field, `claim:<name>` of the body's ID token, `query:<name>`, or UNKNOWN_FIELD in either. */
  readonly place: string;
}

interface Parts {
  readonly body?: Record<string, unknown>;
  readonly query?: Record<string, unknown>;
}

const TIMESTAMP_PLACES = new Set(['query:since', 'query:cursor.createdAt']);
const QUERY_PATHS = new Set(['/api/v1/agents', '/api/v1/audit', '/api/v1/stats', '/api/v1/keys', '/api/v1/oidc/trust-policies', '/api/v1/federation/partners', '/api/v1/federation/bindings', '/api/v1/webhooks', '/api/v1/webhooks/{webhookId}/deliveries']);
const SITE_ENDPOINTS = ENDPOINTS.filter((endpoint) => endpoint.body !== 'none' || (endpoint.method === 'GET' && QUERY_PATHS.has(endpoint.path)));

function validParts(endpoint: Endpoint): Parts {
  return endpoint.body === 'none' ? { query: validQuery(endpoint) } : { body: validBody(endpoint) };
}

function allSites(): Site[] {
  return SITE_ENDPOINTS.flatMap((endpoint) => {
    const { body, query } = validParts(endpoint);
    const claims = body?.token instanceof SignedIdToken ? CLAIMS.map((claim) => `claim:${claim}`) : [];
    const places = body ? [...Object.keys(body), ...claims] : Object.keys(query ?? {}).map((name) => `query:${name}`);
    return [...places, UNKNOWN_FIELD].map((place) => ({ endpoint, place }));
  });
}

function validValueAt(site: Site): unknown {
  const { body, query } = validParts(site.endpoint);
  if (site.place === UNKNOWN_FIELD) return 'x';
  if (site.place.startsWith('claim:')) return FIXTURE[site.place.slice('claim:'.length)] ?? 'production';
  if (site.place.startsWith('query:')) return query?.[site.place.slice('query:'.length)];
  return body?.[site.place];
}

function partsWith(site: Site, value: unknown): Parts {
  const { body, query } = validParts(site.endpoint);
  const odd = (parts: Record<string, unknown>, name: string) => ({ ...parts, [name]: value });
  if (query) return { query: odd(query, site.place === UNKNOWN_FIELD ? 'unexpected' : site.place.slice('query:'.length)) };
  if (site.place === UNKNOWN_FIELD) return { body: odd(body ?? {}, 'unexpected') };
  if (site.place.startsWith('claim:')) return { body: { ...body, token: new SignedIdToken(odd(FIXTURE, site.place.slice('claim:'.length))) } };
  return { body: odd(body ?? {}, site.place) };
}

/** A query string; the agents cursor is put together from its parts as the server makes it (base64url JSON). */
function encodeQuery(query: Record<string, unknown>): string {
  const asText = (value: unknown) => (typeof value === 'string' ? value : JSON.stringify(value) ?? '');
  const params = Object.entries(query).filter(([name, value]) => value !== ABSENT && !name.startsWith('cursor.'));
  const cursorParts = Object.entries(query).filter(([name, value]) => value !== ABSENT && name.startsWith('cursor.'));
  if (cursorParts.length > 0) {
    const cursor = Object.fromEntries(cursorParts.map(([name, value]) => [name.slice('cursor.'.length), value]));
    params.push(['cursor', Buffer.from(JSON.stringify(cursor)).toString('base64url')]);
  }
  return params.length ? `?${params.map(([name, value]) => `${percentEncode(name)}=${percentEncode(asText(value))}`).join('&')}` : '';
}

async function sendParts(endpoint: Endpoint, parts: Parts, as: 'json' | 'form' = endpoint.body === 'form' ? 'form' : 'json'): Promise<RawReply> {
  const needsAdmin = endpoint.path !== '/api/v1/token' && !/\/oidc\/(token|register)$/.test(endpoint.path);
  const path = fillTemplate(endpoint.path, targetParams(world));
  const headers: [string, string][] = needsAdmin ? [['Authorization', `Bearer ${world.adminToken}`]] : [];
  if (parts.body) headers.push(['Content-Type', naturalType(as)]);
  const request = {
    method: endpoint.method,
    target: path + (parts.query ? encodeQuery(parts.query) : ''),
    headers,
    body: parts.body && (await encodeBody(world.github, parts.body, as)),
  };
  const reply = await rawRequest(world.server.url, request);
  checkSoundReply(request, reply, { documented: true });
  return reply;
}

/** The endpoints that store what they are sent and answer with it: an agent, a trust policy or a federation partner. */
const STORING_PATHS = new Set([
  '/api/v1/agents',
  '/api/v1/agents/{agentId}',
  '/api/v1/oidc/trust-policies',
  '/api/v1/oidc/register',
  '/api/v1/federation/partners',
  '/api/v1/federation/partners/{partnerId}',
]);

/** What a success echoes (an agent, a trust policy) is what was sent: accepted text is never stored altered. */
function expectStoredAsSent(site: Site, value: unknown, reply: RawReply): void {
  const echoed = (reply.json as Record<string, unknown> | undefined)?.[site.place];
  if (!STORING_PATHS.has(site.endpoint.path) || reply.status >= 300 || typeof value !== 'string' || typeof echoed !== 'string') return;
  expect({ place: `${site.endpoint.path} ${site.place}`, stored: echoed }).toEqual({ place: `${site.endpoint.path} ${site.place}`, stored: site.place === 'name' ? value.trim() : value });
}

const insertAt = (valid: string, odd: string, at: number) => valid.slice(0, at % (valid.length + 1)) + odd + valid.slice(at % (valid.length + 1));

/** Instants at the edges of what JavaScript and PostgreSQL hold, and dates that do not exist. */
const TIMESTAMP_EDGES = [
  '0000-01-01T00:00:00Z',
  '0000-12-31T23:59:59.999Z',
  '0001-01-01T00:00:00+14:00',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '9999-12-31T23:59:59-12:00',
  '2020-02-30T00:00:00Z',
  '2020-01-01T24:00:00Z',
  '1970-01-01T00:00:00.123456789Z',
];

describe('hostile input, one part at a time: every answer is a documented 4xx or a valid success', () => {
  it('accepts the valid request of every endpoint that takes a body or a query (the control for every case below)', async () => {
    for (const endpoint of SITE_ENDPOINTS) {
      const reply = await sendParts(endpoint, validParts(endpoint));
      expect(`${endpoint.method} ${endpoint.path} ${reply.status} ${reply.text.slice(0, 200)}`).toMatch(/^\S+ \S+ 20[012] /);
    }
  });

  it('sweeps NUL, lone surrogates, a control character and a bidi override through every text field, claim and query parameter, and edge instants through every timestamp', async () => {
    const odd = ['\u0000', '\ud800', '\udfff', '\u0007', '\u202e', '\\u0000'];
    for (const site of allSites()) {
      const valid = validValueAt(site);
      if (typeof valid !== 'string') continue;
      const values = [...odd.map((character) => insertAt(valid, character, valid.length >> 1)), ...(TIMESTAMP_PLACES.has(site.place) ? TIMESTAMP_EDGES : [])];
      for (const value of values) {
        const parts = partsWith(site, value);
        // An exchange for an agent whose policy has pinned nothing yet, so that a claim it accepts would be pinned.
        if (site.endpoint.path === '/api/v1/oidc/token' && parts.body) parts.body.agentId = await agentWithUnboundPolicy();
        expectStoredAsSent(site, value, await sendParts(site.endpoint, parts));
      }
    }
  });

  it('any value in any one place of a valid request', async () => {
    const oddValue = (site: Site) => {
      const valid = validValueAt(site);
      return fc.oneof(
        ...(typeof valid === 'string'
          ? [{ weight: 4, arbitrary: fc.tuple(fc.array(surprise, { minLength: 1, maxLength: 3 }), fc.nat()).map(([odd, at]) => insertAt(valid, odd.join(''), at)) }]
          : []),
        ...(TIMESTAMP_PLACES.has(site.place) ? [{ weight: 4, arbitrary: isoDateTime }] : []),
        { weight: 3, arbitrary: hostileValue },
        { weight: 1, arbitrary: text(60) },
        { weight: 1, arbitrary: fc.constant(ABSENT) },
      );
    };
    const cases = fc.constantFrom(...allSites()).chain((site) =>
      fc.record({
        site: fc.constant(site),
        value: oddValue(site),
        as: site.endpoint.body === 'json-or-form' ? fc.constantFrom<'json' | 'form'>('json', 'form') : fc.constant(site.endpoint.body === 'form' ? ('form' as const) : ('json' as const)),
      }),
    );
    await fc.assert(
      fc.asyncProperty(cases, async ({ site, value, as }) => {
        expectStoredAsSent(site, value, await sendParts(site.endpoint, partsWith(site, value), as));
      }),
      { ...SEED, numRuns: 300 },
    );
  });

  it('leaves the server healthy, the admin able to act, the audit chain intact and no error logged', () => expectUnharmed(world));
});
