/**
 * Single use of an ID token (also under concurrency, across instances and across both
 * endpoints), and the issuer's keys: outage with nothing cached, recovery, rotation.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import type { Reply } from '../support/api.js';
import type { TestServer } from '../support/test-server.js';
import {
  AUDIENCE,
  REFUSAL,
  agentWithPolicy,
  auditEvents,
  createPolicy,
  exchange,
  mintIdToken,
  register,
  startHarness,
  type Harness,
} from './exchange-harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h.stop();
});

const statusesOf = (replies: Reply[]) => replies.map((reply) => reply.status).sort();

describe('single use', () => {
  it('refuses a replayed token with 400 invalid_grant and audits the replay', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    expect((await exchange(h.server, token, agentId)).status).toBe(200);
    const replay = await exchange(h.server, token, agentId);
    expect({ status: replay.status, body: replay.body }).toEqual({ status: 400, body: REFUSAL.replayed });
    const [event] = await auditEvents(h, 'oidc.exchange.refused', agentId);
    expect(event).toMatchObject({ actor: 'github:octo-org/octo-repo', data: { reason: 'jti already used (replay)', run_id: '9876543210' } });
  });

  it('spends the token even when the exchange is refused, so it cannot be retried against another agent', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    expect((await exchange(h.server, token, randomUUID())).body).toEqual(REFUSAL.violation);
    expect((await exchange(h.server, token, agentId)).body).toEqual(REFUSAL.replayed);
  });

  it('refuses at /oidc/token a token already used at /oidc/register', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    expect((await register(h.server, token, 'replayed-bot')).status).toBe(403);
    expect((await exchange(h.server, token, agentId)).body).toEqual(REFUSAL.replayed);
  });

  it('grants exactly one of ten concurrent uses of one token', async () => {
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    const replies = await Promise.all(Array.from({ length: 10 }, () => exchange(h.server, token, agentId)));
    expect(statusesOf(replies)).toEqual([200, ...Array(9).fill(400)]);
    for (const reply of replies.filter((r) => r.status === 400)) expect(reply.body).toEqual(REFUSAL.replayed);
    expect(await auditEvents(h, 'oidc.exchange.granted', agentId)).toHaveLength(1);
  });

  it('grants exactly one of ten concurrent uses of one token across two instances on one database', async () => {
    const peer = await h.startPeer();
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(h.github);
    const replies = await Promise.all(Array.from({ length: 10 }, (_, i) => exchange(i % 2 ? peer : h.server, token, agentId)));
    expect(statusesOf(replies)).toEqual([200, ...Array(9).fill(400)]);
    expect(await auditEvents(h, 'oidc.exchange.granted', agentId)).toHaveLength(1);
  });
});

describe('the issuer keys', () => {
  let issuer: FakeGitHubIssuer;
  let instance: TestServer;
  beforeAll(async () => {
    issuer = await startFakeGitHubIssuer({ audience: AUDIENCE });
  });
  afterAll(async () => {
    await issuer.close();
  });

  it('answers 503 SERVICE_UNAVAILABLE while the issuer is down with nothing cached, then recovers by itself', async () => {
    issuer.setAvailable(false);
    instance = await h.startPeer({}, issuer);
    const { agentId } = await agentWithPolicy(h);
    const token = await mintIdToken(issuer);
    for (let attempt = 0; attempt < 2; attempt += 1) {
      const reply = await exchange(instance, token, agentId);
      expect({ status: reply.status, body: reply.body }).toEqual({ status: 503, body: REFUSAL.unavailable });
      expect(reply.headers.get('retry-after')).toBe('5');
      expect(reply.headers.get('cache-control')).toBe('no-store');
    }
    issuer.setAvailable(true);
    // The same token: an outage must not have spent it, since the actions retry a 503.
    const recovered = await exchange(instance, token, agentId);
    expect(recovered.status).toBe(200);
  });

  it('picks up a rotated issuer key without a restart', async () => {
    const { agentId } = await agentWithPolicy(h);
    expect((await exchange(instance, await mintIdToken(issuer), agentId)).status).toBe(200);
    const fetchesBefore = issuer.jwksRequests;
    await issuer.rotateKeys();
    const reply = await exchange(instance, await mintIdToken(issuer), agentId);
    expect(reply.status).toBe(200);
    expect(issuer.jwksRequests).toBe(fetchesBefore + 1);
  });

  it('does not let a flood of unknown kids become a flood of JWKS fetches', async () => {
    const { agentId } = await agentWithPolicy(h);
    const fetchesBefore = issuer.jwksRequests;
    const tokens = await Promise.all(Array.from({ length: 8 }, () => mintIdToken(issuer, 'push-main', {}, { kid: randomUUID() })));
    const replies = await Promise.all(tokens.map((token) => exchange(instance, token, agentId)));
    for (const reply of replies) expect({ status: reply.status, body: reply.body }).toEqual({ status: 400, body: REFUSAL.invalid });
    expect(issuer.jwksRequests - fetchesBefore).toBeLessThanOrEqual(1);
  });

  it('keeps serving from its cache while the issuer is down', async () => {
    const { agentId } = await agentWithPolicy(h);
    issuer.setAvailable(false);
    try {
      expect((await exchange(instance, await mintIdToken(issuer), agentId)).status).toBe(200);
    } finally {
      issuer.setAvailable(true);
    }
  });
});

describe('registration uses the same gate', () => {
  it('refuses a replayed registration token', async () => {
    await createPolicy(h, { repository: 'octo-org/gate-repo', scopes: [] });
    const token = await mintIdToken(h.github, 'push-main', { repository: 'octo-org/gate-repo', repository_id: '700000001' });
    expect((await register(h.server, token, 'gate-bot')).status).toBe(201);
    const replay = await register(h.server, token, 'gate-bot');
    expect({ status: replay.status, body: replay.body }).toEqual({ status: 400, body: REFUSAL.replayed });
    const [event] = await auditEvents(h, 'oidc.register.refused');
    expect(event.data).toMatchObject({ reason: 'jti already used (replay)', repository: 'octo-org/gate-repo' });
  });

  it('answers 503 at /oidc/register while the issuer is down with nothing cached', async () => {
    const down = await startFakeGitHubIssuer({ audience: AUDIENCE });
    try {
      down.setAvailable(false);
      const peer = await h.startPeer({}, down);
      const reply = await register(peer, await mintIdToken(down), 'down-bot');
      expect({ status: reply.status, body: reply.body }).toEqual({ status: 503, body: REFUSAL.unavailable });
    } finally {
      await down.close();
    }
  });
});
