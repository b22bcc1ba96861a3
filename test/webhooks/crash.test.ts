/**
 * A server process killed (SIGKILL) in the middle of a webhook delivery loses nothing: the
 * delivery it held is due again when its lease ends and another instance sends it, with the
 * same `webhook-id`; every other event is delivered once. Real processes, real PostgreSQL.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { bearer, createAgent, getToken, json, send } from '../support/api.js';
import { createTestDatabase, isRealPostgres, testPoolMode, type TestDatabase } from '../support/database.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { ADMIN } from '../support/test-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // two processes on one database

describeWithPostgres('a webhook worker killed mid-delivery', () => {
  let database: TestDatabase;
  let receiver: WebhookReceiver;
  const processes: ServerProcess[] = [];

  const start = async () => {
    const server = await startServerProcess({
      DATABASE_URL: database.url,
      DATABASE_POOL_MODE: testPoolMode,
      BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.clientId,
      BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.clientSecret,
      RATE_LIMIT_PER_MINUTE: '0',
      MONTHLY_TOKEN_LIMIT: '0',
      EGRESS_ALLOW_CIDRS: '127.0.0.0/8',
      // Leased for 4 s: the test waits that long, not 30 s.
      WEBHOOK_TIMEOUT_SECONDS: '2',
    });
    processes.push(server);
    return server;
  };

  beforeAll(async () => {
    database = await createTestDatabase();
    receiver = await startWebhookReceiver();
  }, 120_000);
  afterAll(async () => {
    for (const server of processes) if (server.child.exitCode === null) server.child.kill('SIGKILL');
    await receiver?.close();
    await database?.drop();
  });

  it('loses no event and repeats only the one in flight', async () => {
    const first = await start();
    const admin = await getToken(first, ADMIN.clientId, ADMIN.clientSecret);
    const hook = await send(first, '/api/v1/webhooks', json('POST', { url: receiver.url, eventTypes: ['agent.created'] }, admin));
    expect(hook.status).toBe(201);
    // The first delivery is held open by the receiver; the server dies holding it.
    receiver.script({ hang: true, status: 0 });
    await createAgent(first, admin, { name: 'in-flight' });
    await receiver.waitFor(1);
    first.child.kill('SIGKILL');
    await new Promise((resolve) => first.child.once('close', resolve));

    const second = await start();
    const admin2 = await getToken(second, ADMIN.clientId, ADMIN.clientSecret);
    const later = [];
    for (let i = 0; i < 5; i += 1) later.push(await createAgent(second, admin2, { name: `after-${i}` }));
    const all = await receiver.waitFor(7, 30_000);
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(receiver.received).toHaveLength(7);
    const ids = all.map((delivery) => delivery.headers['webhook-id']);
    // The held delivery came twice (same webhook-id), every other once.
    expect(ids.filter((id) => id === ids[0])).toHaveLength(2);
    expect(new Set(ids).size).toBe(6);
    const delivered = new Set(all.map((delivery) => JSON.parse(delivery.body).data.agentId));
    for (const agent of later) expect(delivered.has(agent.agentId)).toBe(true);
    const history = await send(second, `/api/v1/webhooks/${hook.body.webhookId}/deliveries`, bearer(admin2));
    expect(history.body.data.map((delivery: { status: string }) => delivery.status)).toEqual(Array(6).fill('succeeded'));
  }, 90_000);
});
