/**
 * A stranger sending junk ID tokens must not write into an agent's audit log, nor lock an
 * agent's workflows out (issue 13, finding 4). Refusals before the signature is verified
 * are counted by reason (a metric; one platform-level audit row per reason and minute),
 * and limited on their own, overall and per agent named; a token whose signature verifies
 * is never refused by that limit.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { pruneExpiredRows } from '../../server/src/maintenance.js';
import { testClock, startOfNextMinute, type TestClock } from '../support/clock.js';
import { json, send, type Reply } from '../support/api.js';
import { ADMIN, type TestServer } from '../support/test-server.js';
import { agentWithPolicy, exchange, mintIdToken, register, startHarness, type Harness } from './exchange-harness.js';

const JUNK = 'e30.e30.'; // a JWS shape with an empty header: refused for its alg, unsigned
const PER_AGENT = 5;

async function metric(server: TestServer, endpoint: string, reason: string): Promise<number> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`sentryagent_oidc_unverified_refusals_total{endpoint="${endpoint}",reason="${reason}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
}

async function auditRows(server: TestServer): Promise<{ type: string; agent_id: string | null; actor: string; data: Record<string, unknown> }[]> {
  return server.deps.knex('audit_events').whereLike('type', 'oidc.%').select('type', 'agent_id', 'actor', 'data').orderBy('id');
}

describe('without a limit (RATE_LIMIT_PER_MINUTE=0)', () => {
  let h: Harness;
  let clock: TestClock;
  beforeAll(async () => {
    clock = testClock(startOfNextMinute());
    h = await startHarness({}, clock);
  });
  afterAll(async () => {
    await h.stop();
  });

  it('writes nothing about the agent a flood names; one audit row per reason and minute, with its count', async () => {
    const before = await metric(h.server, 'exchange', 'alg');
    const replies: Reply[] = [];
    for (let i = 0; i < 60; i += 1) replies.push(await exchange(h.server, JUNK, ADMIN.clientId));
    for (let i = 0; i < 15; i += 1) replies.push(await exchange(h.server, 'not-a-jwt', ADMIN.clientId));
    for (let i = 0; i < 5; i += 1) replies.push(await register(h.server, JUNK, 'intruder'));
    expect(new Set(replies.map((reply) => reply.status))).toEqual(new Set([400]));
    expect(await metric(h.server, 'exchange', 'alg')).toBe(before + 60);
    expect(await metric(h.server, 'exchange', 'malformed')).toBe(15);
    expect(await metric(h.server, 'register', 'alg')).toBe(5);
    expect(await auditRows(h.server)).toEqual([]);

    // The minute is not over: nothing yet. Once it is, one row per endpoint and reason.
    await pruneExpiredRows(h.server.deps.knex, clock, h.server.config.tokenTtlSeconds);
    expect(await auditRows(h.server)).toEqual([]);
    const minute = new Date(Math.floor(clock.now() / 60_000) * 60_000).toISOString();
    clock.advance(60_000);
    await pruneExpiredRows(h.server.deps.knex, clock, h.server.config.tokenTtlSeconds);
    const rows = await auditRows(h.server);
    expect(rows).toEqual(
      expect.arrayContaining([
        { type: 'oidc.unverified_refused', agent_id: null, actor: 'github:unverified', data: { endpoint: 'exchange', reason: 'alg', count: 60, minute } },
        { type: 'oidc.unverified_refused', agent_id: null, actor: 'github:unverified', data: { endpoint: 'exchange', reason: 'malformed', count: 15, minute } },
        { type: 'oidc.unverified_refused', agent_id: null, actor: 'github:unverified', data: { endpoint: 'register', reason: 'alg', count: 5, minute } },
      ]),
    );
    expect(rows).toHaveLength(3);
    // Summarized once: the next pass writes nothing more.
    await pruneExpiredRows(h.server.deps.knex, clock, h.server.config.tokenTtlSeconds);
    expect(await auditRows(h.server)).toHaveLength(3);
  });

  it('still audits each refusal of a token whose signature verified, about the agent it named', async () => {
    const { agentId } = await agentWithPolicy(h, { branch: 'main' });
    const expired = await mintIdToken(h.github, 'push-main', { exp: Math.floor(clock.now() / 1000) - 600, iat: Math.floor(clock.now() / 1000) - 900 });
    expect((await exchange(h.server, expired, agentId)).status).toBe(400);
    const rows = await h.server.deps.knex('audit_events').where({ type: 'oidc.exchange.refused', agent_id: agentId }).select('data');
    expect(rows).toEqual([{ data: { reason: expect.stringMatching(/^expired at /) } }]);
  });
});

describe(`with RATE_LIMIT_PER_MINUTE=${PER_AGENT}`, () => {
  let h: Harness;
  let peer: TestServer;
  let clock: TestClock;
  beforeAll(async () => {
    clock = testClock(startOfNextMinute());
    const env = { RATE_LIMIT_PER_MINUTE: String(PER_AGENT) };
    h = await startHarness(env, clock);
    peer = await h.startPeer(env);
  });
  afterAll(async () => {
    await h.stop();
  });

  it('answers 429 past the limit per agent named, on every instance, and never refuses a verified token', async () => {
    const { agentId } = await agentWithPolicy(h);
    const junk = (i: number) => exchange(i % 2 === 0 ? h.server : peer, JUNK, agentId);
    for (let i = 0; i < PER_AGENT; i += 1) expect((await junk(i)).status).toBe(400);
    const limited = await junk(PER_AGENT);
    expect({ status: limited.status, body: limited.body }).toEqual({ status: 429, body: { code: 'RATE_LIMIT_EXCEEDED', message: expect.any(String) } });
    expect(limited.headers.get('retry-after')).toMatch(/^\d+$/);
    expect(limited.headers.get('x-ratelimit-limit')).toBe(String(PER_AGENT));
    // Another agent's junk is not limited by this one's.
    expect((await exchange(h.server, JUNK, randomUUID())).status).toBe(400);
    // The agent's own workflow still gets its token.
    const granted = await exchange(peer, await mintIdToken(h.github, 'push-main'), agentId);
    expect(granted.status).toBe(200);
    // A new minute, a new count.
    clock.advance(60_000);
    expect((await junk(0)).status).toBe(400);
  });

  it('answers 429 past the overall limit (ten times the limit per agent), registration included; verified tokens pass', async () => {
    clock.advance(60_000);
    const { agentId } = await agentWithPolicy(h);
    const statuses: number[] = [];
    for (let i = 0; i < PER_AGENT * 10; i += 1) {
      statuses.push(i % 5 === 0 ? (await register(h.server, JUNK, 'intruder')).status : (await exchange(peer, JUNK, randomUUID())).status);
    }
    expect(new Set(statuses)).toEqual(new Set([400]));
    expect((await exchange(h.server, JUNK, randomUUID())).status).toBe(429);
    expect((await register(peer, JUNK, 'intruder')).status).toBe(429);
    expect((await exchange(h.server, await mintIdToken(h.github, 'push-main'), agentId)).status).toBe(200);
    const registered = await register(h.server, await mintIdToken(h.github, 'push-main'), 'not-refused');
    // No registration policy: refused for that, by the trust policy rule, not the limit.
    expect({ status: registered.status, body: registered.body }).toEqual({ status: 403, body: { error: 'access_denied', error_description: 'Trust policy violation' } });
  });

  it('rejects bad input before counting anything', async () => {
    const reply = await send(h.server, '/api/v1/oidc/token', json('POST', { token: JUNK, agentId: 'not-a-uuid' }));
    expect(reply.status).toBe(400);
  });
});
