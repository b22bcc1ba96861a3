/**
 * Two instances on one PostgreSQL database, both running the webhook worker: every event is
 * delivered once (FOR UPDATE SKIP LOCKED; one instance fans out at a time), none is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminToken, createAgent, json, send } from '../support/api.js';
import { isRealPostgres } from '../support/database.js';
import { mapLimit } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // two pools on one database need a real server

describeWithPostgres('webhooks on two instances', () => {
  let first: TestServer;
  let second: TestServer;
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    const env = { EGRESS_ALLOW_CIDRS: '127.0.0.0/8' };
    first = await startTestServer({ env });
    second = await startTestServer({ env, shareWith: first });
    receiver = await startWebhookReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await second?.stop();
    await first?.stop();
  });

  it('deliver each event exactly once in the normal case', async () => {
    const admin = await adminToken(first);
    expect((await send(first, '/api/v1/webhooks', json('POST', { url: receiver.url, eventTypes: ['agent.created'] }, admin))).status).toBe(201);
    const names = Array.from({ length: 40 }, (_, i) => `twin-${i}`);
    const agents = await mapLimit(names, 8, (name, i) => createAgent(i % 2 === 0 ? first : second, admin, { name }));
    const delivered = await receiver.waitFor(40, 20_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(receiver.received).toHaveLength(40);
    const ids = delivered.map((delivery) => delivery.headers['webhook-id']);
    expect(new Set(ids).size).toBe(40);
    const agentIds = new Set(delivered.map((delivery) => JSON.parse(delivery.body).data.agentId));
    expect(agentIds).toEqual(new Set(agents.map((agent) => agent.agentId)));
  });
});
