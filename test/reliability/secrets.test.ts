/**
 * Secrets nowhere. One scenario on a server logging at trace level: the bootstrap admin's
 * tokens, an agent and two credentials, tokens by client_secret_post and
 * client_secret_basic, introspection, revocation, GitHub exchanges (granted, replayed,
 * refused) and registrations, wrong secrets, and malformed requests that carry secrets and
 * tokens where they do not belong (query strings, JSON keys, scopes, repeated parameters,
 * the wrong endpoint). Then no client secret (right or wrong), no access token, no GitHub
 * ID token, no signature of either, and no Basic credentials may be found in any log line,
 * any audit event (read through GET /api/v1/audit, every page, and from the table), any
 * other table, or any error answer, headers included.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';
import { bearer, json, send, type Reply } from '../support/api.js';
import { rawRequest } from '../support/raw-http.js';

const AUDIENCE = 'https://idp.test/github';
const REPOSITORY = 'octo-org/octo-repo';

let github: FakeGitHubIssuer;
let server: TestServer;

/** Every secret and token the scenario used, by what it is. */
const secrets = new Map<string, string>();
/** Every answer with a status of 400 or more: its status line context, headers and body. */
const errorAnswers: { readonly what: string; readonly text: string }[] = [];

function remember(what: string, value: string): string {
  secrets.set(value, what);
  // A JWT's signature alone identifies it (and would let the rest be rebuilt from what is public).
  const parts = value.split('.');
  if (parts.length === 3 && parts[2].length > 20) secrets.set(parts[2], `the signature of ${what}`);
  return value;
}

function record(what: string, status: number, headers: Iterable<[string, string]>, text: string): void {
  if (status >= 400) errorAnswers.push({ what: `${what} → ${status}`, text: `${[...headers].map(([name, value]) => `${name}: ${value}`).join('\n')}\n\n${text}` });
}

/** `send`, with every error answer recorded. */
async function call(what: string, path: string, init: RequestInit = {}): Promise<Reply> {
  const reply = await send(server, path, init);
  record(what, reply.status, reply.headers.entries(), reply.text);
  return reply;
}

const form = (params: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...headers },
  body: new URLSearchParams(params).toString(),
});
const basic = (clientId: string, clientSecret: string) =>
  remember('Basic credentials', `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`).toString('base64')}`);

async function tokenFor(what: string, init: RequestInit): Promise<string> {
  const reply = await call(what, '/api/v1/token', init);
  expect(reply.status).toBe(200);
  return remember(`the access token from ${what}`, reply.body.access_token);
}

async function mint(what: string, claims: Record<string, unknown> = {}): Promise<string> {
  return remember(what, await github.mintIdToken({ ...loadClaimFixture('push-main'), ...claims }));
}

beforeAll(async () => {
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
  server = await startTestServer({ env: { LOG_LEVEL: 'trace', GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE } });
  remember("the bootstrap admin's secret", ADMIN.clientSecret);
});
afterAll(async () => {
  await server?.stop();
  await github?.close();
});

async function runScenario(): Promise<void> {
  const admin = await tokenFor('the admin, client_secret_post', form({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: ADMIN.clientSecret }));
  await tokenFor('the admin, client_secret_basic', form({ grant_type: 'client_credentials' }, { Authorization: basic(ADMIN.clientId, ADMIN.clientSecret) }));

  const agent = await call('create an agent', '/api/v1/agents', json('POST', { name: 'secretive', scopes: ['agents:read', 'tokens:read'] }, admin));
  const agentId: string = agent.body.agentId;
  const credentials = [];
  for (const which of ['first', 'second']) {
    const created = await call(`create the ${which} credential`, `/api/v1/agents/${agentId}/credentials`, bearer(admin, { method: 'POST' }));
    expect(created.status).toBe(201);
    credentials.push(remember(`the ${which} credential's secret`, created.body.clientSecret));
  }
  await call('list credentials', `/api/v1/agents/${agentId}/credentials`, bearer(admin));
  const [first, second] = credentials;
  const byPost = await tokenFor('client_secret_post', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: first }));
  const byBasic = await tokenFor('client_secret_basic', form({ grant_type: 'client_credentials', scope: 'tokens:read' }, { Authorization: basic(agentId, second) }));

  await call('introspect as the admin', '/api/v1/token/introspect', bearer(admin, form({ token: byPost })));
  await call('introspect as the agent', '/api/v1/token/introspect', bearer(byBasic, form({ token: byPost, token_type_hint: 'access_token' })));
  await call('revoke its own token', '/api/v1/token/revoke', bearer(byPost, form({ token: byPost })));
  await call('introspect a revoked token', '/api/v1/token/introspect', bearer(admin, form({ token: byPost })));
  await call('use a revoked token', '/api/v1/agents', bearer(byPost));
  await call('revoke as the admin', '/api/v1/token/revoke', bearer(admin, form({ token: byBasic })));

  // GitHub: a trust policy and a registration policy, then granted, replayed and refused ID tokens.
  await call('create a trust policy', '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, agentId }, admin));
  await call('create a registration policy', '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, scopes: ['agents:read'] }, admin));
  const granted = await mint('a GitHub ID token');
  const exchanged = await call('a GitHub exchange', '/api/v1/oidc/token', json('POST', { token: granted, agentId }));
  expect(exchanged.status).toBe(200);
  const fromGitHub = remember('the access token from a GitHub exchange', exchanged.body.access_token);
  await call('introspect the exchanged token', '/api/v1/token/introspect', bearer(admin, form({ token: fromGitHub })));
  await call('replay a GitHub ID token', '/api/v1/oidc/token', json('POST', { token: granted, agentId }));
  await call('a GitHub ID token for an unknown agent', '/api/v1/oidc/token', json('POST', { token: await mint('an ID token for an unknown agent'), agentId: crypto.randomUUID() }));
  await call('a GitHub ID token from another branch', '/api/v1/oidc/token', form({ token: await mint('an ID token of a tag', { ref: 'refs/tags/v1' }), agentId, scope: 'agents:read' }));
  await call('a GitHub ID token for another audience', '/api/v1/oidc/token', json('POST', { token: await mint('an ID token for another audience', { aud: 'https://elsewhere' }), agentId }));
  await call('a GitHub ID token asking for a scope it may not have', '/api/v1/oidc/token', json('POST', { token: await mint('an ID token asking too much'), agentId, scope: 'audit:read' }));
  await call('a GitHub ID token, tampered', '/api/v1/oidc/token', json('POST', { token: `${granted.slice(0, -4)}AAAA`, agentId }));
  const registered = await call('register an agent', '/api/v1/oidc/register', json('POST', { token: await mint('a registration ID token'), name: 'from-ci' }));
  expect(registered.status).toBe(201);
  await call('register it again', '/api/v1/oidc/register', form({ token: await mint('a second registration ID token'), name: 'from-ci' }));
  await call('register with a refused scope', '/api/v1/oidc/register', json('POST', { token: await mint('a registration ID token asking too much'), name: 'greedy', scopes: ['audit:read'] }));

  // Wrong secrets: a typo, another credential's secret, a secret for the wrong client, a secret as the client id.
  const wrong = remember('a wrong secret', `sk_live_${crypto.randomBytes(32).toString('base64url')}`);
  await call('a wrong secret, post', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: wrong }));
  await call('a wrong secret, basic', '/api/v1/token', form({ grant_type: 'client_credentials' }, { Authorization: basic(agentId, wrong) }));
  await call("the admin's secret for the agent", '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: ADMIN.clientSecret }));
  await call("a secret for an unknown client", '/api/v1/token', form({ grant_type: 'client_credentials', client_id: crypto.randomUUID(), client_secret: second }));
  await call('a secret as the client id', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: second, client_secret: second }));
  await call('a secret as the client id, basic', '/api/v1/token', form({ grant_type: 'client_credentials' }, { Authorization: basic(second, second) }));
  await call('a revoked credential', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: first }));

  // Malformed requests carrying secrets and tokens where they do not belong.
  await call('Basic and post at once', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: second }, { Authorization: basic(agentId, second) }));
  await call('a secret as the scope', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: second, scope: second }));
  await call('a token as the scope', '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: second, scope: admin }));
  await call('a token as the scope of an exchange', '/api/v1/oidc/token', json('POST', { token: await mint('an ID token with a token for a scope'), agentId, scope: admin }));
  await call('a secret without grant_type', '/api/v1/token', form({ client_id: agentId, client_secret: second }));
  await call('a secret with another grant', '/api/v1/token', form({ grant_type: 'password', username: agentId, password: second }));
  await call('a secret in JSON', '/api/v1/token', json('POST', { grant_type: 'client_credentials', client_id: agentId, client_secret: second }));
  await call('a secret in the query string', `/api/v1/token?client_secret=${encodeURIComponent(second)}`, form({ grant_type: 'client_credentials', client_id: agentId }));
  await call('a token as the Basic password', '/api/v1/token', form({ grant_type: 'client_credentials' }, { Authorization: basic(agentId, admin) }));
  await call('a token in a query key', `/api/v1/agents?${admin}`, bearer(admin));
  await call('a token in a query value', `/api/v1/audit?access_token=${admin}`, bearer(admin));
  await call('a token as a path parameter', `/api/v1/agents/${admin}`, bearer(admin));
  await call('a secret as a JSON key', '/api/v1/agents', json('POST', { name: 'x', [second]: true }, admin));
  await call('a secret as a JSON value of an unknown field', '/api/v1/agents', json('POST', { name: 'x', client_secret: second }, admin));
  await call('a secret as a trust policy field', '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: second, environment: second }, admin));
  await call('an ID token as an agent name', '/api/v1/agents', json('POST', { name: granted }, admin));
  await call('an ID token as the agentId', '/api/v1/oidc/token', json('POST', { token: granted, agentId: granted }));
  await call('an access token as an ID token', '/api/v1/oidc/token', json('POST', { token: admin, agentId }));
  await call('an access token to register', '/api/v1/oidc/register', json('POST', { token: admin, name: 'x' }));
  await call('a secret as a Bearer token', '/api/v1/agents', bearer(second));
  await call('a secret as a Bearer token of introspection', '/api/v1/token/introspect', bearer(second, form({ token: admin })));
  await call('an ID token as a Bearer token', '/api/v1/audit', bearer(granted));
  for (const [what, body] of [
    ['a repeated secret', `grant_type=client_credentials&client_id=${agentId}&client_secret=${encodeURIComponent(second)}&client_secret=${encodeURIComponent(second)}`],
    ['a secret as a repeated parameter name', `grant_type=client_credentials&${encodeURIComponent(second)}=1&${encodeURIComponent(second)}=2`],
    ['a secret after invalid UTF-8', Buffer.concat([Buffer.from(`client_id=${agentId}&client_secret=${second}&x=`), Buffer.from([0xff])])],
  ] as const) {
    const request = { method: 'POST', target: '/api/v1/token', headers: [['Content-Type', 'application/x-www-form-urlencoded']] as [string, string][], body };
    const reply = await rawRequest(server.url, request);
    record(what, reply.status, Object.entries(reply.headers).map(([name, values]) => [name, values.join(', ')] as [string, string]), reply.text);
  }
}

/** Where each remembered secret turns up in `haystack`, as readable findings. */
function findings(where: string, haystack: string): string[] {
  return [...secrets].filter(([secret]) => haystack.includes(secret)).map(([, what]) => `${what} in ${where}`);
}

async function wholeAuditLog(admin: string): Promise<unknown[]> {
  const events: unknown[] = [];
  for (let cursor: string | null = null, pages = 0; pages === 0 || (cursor !== null && pages < 100); pages += 1) {
    const reply: Reply = await call('read the audit log', `/api/v1/audit?limit=100${cursor ? `&cursor=${cursor}` : ''}`, bearer(admin));
    expect(reply.status).toBe(200);
    events.push(...reply.body.data);
    cursor = reply.body.nextCursor;
  }
  return events;
}

describe('secrets nowhere', () => {
  let admin: string;

  beforeAll(async () => {
    await runScenario();
    admin = await tokenFor('the admin, to read back', form({ grant_type: 'client_credentials', client_id: ADMIN.clientId, client_secret: ADMIN.clientSecret }));
  });

  it('ran the scenario it claims to: refusals, grants and trace logging all happened', () => {
    expect(secrets.size).toBeGreaterThan(25);
    expect(errorAnswers.length).toBeGreaterThan(30);
    // One request line for each answer at least.
    expect(server.logs.join('').split('\n').filter((line) => line.includes('"msg":"request"')).length).toBeGreaterThan(errorAnswers.length);
    expect(server.config.logLevel).toBe('trace');
  });

  it('in no log line', () => {
    expect(server.logs.flatMap((line, index) => findings(`log line ${index}: ${line.slice(0, 200)}`, line))).toEqual([]);
  });

  it('in no audit event, read through the API or from the table', async () => {
    const events = await wholeAuditLog(admin);
    const stored = await server.deps.knex('audit_events').select('*');
    // (The tampered ID token writes no row of its own: it is counted, github/unverified-refusals.ts.)
    expect(stored.length).toBeGreaterThan(24);
    expect(events.length).toBe(stored.length);
    const types = new Set(stored.map((row: { type: string }) => row.type));
    for (const type of ['token.issued', 'token.revoked', 'credential.created', 'oidc.exchange.granted', 'oidc.exchange.refused', 'agent.registered', 'oidc.register.refused']) expect(types).toContain(type);
    expect([...findings('the audit API', JSON.stringify(events)), ...findings('the audit table', JSON.stringify(stored))]).toEqual([]);
  });

  it('in no other table', async () => {
    const tables = ['agents', 'credentials', 'access_tokens', 'trust_policies', 'github_used_jtis', 'rate_limit_windows', 'token_quotas'];
    const found: string[] = [];
    for (const table of tables) found.push(...findings(`the ${table} table`, JSON.stringify(await server.deps.knex(table).select('*'))));
    expect(found).toEqual([]);
  });

  it('in no error answer, body or headers', () => {
    expect(errorAnswers.flatMap(({ what, text }) => findings(`the answer to ${what}`, text))).toEqual([]);
  });
});
