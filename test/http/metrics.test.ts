/**
 * Prometheus metrics as docs/operations.md documents them (issue 14, section 4): request
 * durations by status, and counters for refused exchanges by reason, rate-limit refusals
 * and quota refusals.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminToken, createAgent, form, send } from '../support/api.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { exchange, mintIdToken, startHarness, type Harness } from '../github/exchange-harness.js';
import { randomUUID } from 'node:crypto';
import { startOfNextMinute, testClock } from '../support/clock.js';

async function sample(server: { url: string }, series: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('metrics', () => {
  let server: TestServer;
  const clock = testClock(startOfNextMinute());
  beforeAll(async () => {
    server = await startTestServer({ env: { RATE_LIMIT_PER_MINUTE: '2', MONTHLY_TOKEN_LIMIT: '2' }, clock });
  });
  afterAll(() => server.stop());

  it('time requests by method, route and status', async () => {
    await send(server, '/healthz');
    await send(server, '/api/v1/agents');
    expect(await sample(server, 'http_request_duration_seconds_count{method="GET",route="/healthz",status="200"}')).toBeGreaterThanOrEqual(1);
    expect(await sample(server, 'http_request_duration_seconds_count{method="GET",route="/api/v1/agents",status="401"}')).toBe(1);
  });

  it('count rate-limit refusals by route, and quota refusals by grant type', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const grant = async () => (await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }))).status;
    expect([await grant(), await grant(), await grant()]).toEqual([200, 200, 429]);
    expect(await sample(server, 'sentryagent_rate_limited_total{route="/api/v1/token"}')).toBe(1);
    expect(await sample(server, 'sentryagent_quota_refusals_total{grant_type="client_credentials"}')).toBe(0);
    clock.advance(60_000); // a new minute; the month's two grants are spent
    expect(await grant()).toBe(403);
    expect(await sample(server, 'sentryagent_quota_refusals_total{grant_type="client_credentials"}')).toBe(1);
  });
});

describe('hot-path statements', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer();
  });
  afterAll(() => server.stop());

  it('time the hot-path statements and count the requests each served', async () => {
    const admin = await adminToken(server);
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const grantsBefore = await sample(server, 'sentryagent_db_statement_batch_size_sum{statement="issue_grants"}');
    const roundTripsBefore = await sample(server, 'sentryagent_db_statement_duration_seconds_count{statement="issue_grants"}');
    const grants = await Promise.all(
      [1, 2].map(() => send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }))),
    );
    expect(grants.map((reply) => reply.status)).toEqual([200, 200]);
    // Two grants, in one batch or two: each counted once, each round trip timed.
    expect((await sample(server, 'sentryagent_db_statement_batch_size_sum{statement="issue_grants"}')) - grantsBefore).toBe(2);
    const roundTrips = (await sample(server, 'sentryagent_db_statement_duration_seconds_count{statement="issue_grants"}')) - roundTripsBefore;
    expect([1, 2]).toContain(roundTrips);
    expect(await sample(server, 'sentryagent_db_statement_duration_seconds_sum{statement="issue_grants"}')).toBeGreaterThan(0);
  });
});

describe('refused GitHub exchanges', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.stop());

  it('are counted by endpoint and reason', async () => {
    const series = (reason: string) => `sentryagent_oidc_refusals_total{endpoint="exchange",reason="${reason}"}`;
    await exchange(h.server, await mintIdToken(h.github), randomUUID());
    await exchange(h.server, 'e30.e30.', randomUUID());
    expect(await sample(h.server, series('trust_policy_violation'))).toBe(1);
    expect(await sample(h.server, series('invalid_grant'))).toBe(1);
  });
});
