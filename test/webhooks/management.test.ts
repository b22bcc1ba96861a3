/**
 * Webhook endpoints as a tenant's resource: scopes, organizations (another's is 404 and its
 * events never reach this one's endpoints; platform events reach the platform only), the
 * endpoint limit, input validation, the event catalogue, `quota.reached`, and five days of
 * failures disabling an endpoint (on a clock the test moves).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { Webhook } from 'standardwebhooks';
import { WEBHOOK_EVENT_TYPES } from '../../server/src/webhooks/event-types.js';
import { adminToken, bearer, createAgent, createTenant, getToken, json, send, type Tenant } from '../support/api.js';
import { testClock } from '../support/clock.js';
import { keyServiceOf, startTestServer, type TestServer } from '../support/test-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';
import pino from 'pino';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { appendAuditEvent } from '../../server/src/audit/audit-log.js';
import { emitDigest } from '../../server/src/maintenance.js';
import { pruneWebhookHistory } from '../../server/src/webhooks/webhook-queue.js';

const WEBHOOK_ADMIN = ['agents:read', 'agents:write', 'webhooks:read', 'webhooks:write'];
const wait = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: TestServer;
let platform: string;
const receivers: WebhookReceiver[] = [];
let slugs = 0;

beforeAll(async () => {
  server = await startTestServer({ env: { EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_RETRY_SCHEDULE_SECONDS: '0,1' } });
  platform = await adminToken(server);
});
afterAll(async () => {
  await Promise.all(receivers.map((receiver) => receiver.close()));
  await server?.stop();
});

async function receiver(): Promise<WebhookReceiver> {
  const started = await startWebhookReceiver();
  receivers.push(started);
  return started;
}
const newTenant = (limits?: Record<string, number>, adminScopes = WEBHOOK_ADMIN): Promise<Tenant> =>
  createTenant(server, platform, { slug: `hooks-${++slugs}-${Date.now().toString(36)}`, adminScopes, limits });
const subscribe = (token: string, body: Record<string, unknown>) => send(server, '/api/v1/webhooks', json('POST', body, token));

describe('webhook endpoints', () => {
  it('lists the event catalogue, each type with a description and an example payload', async () => {
    const reply = await send(server, '/api/v1/webhooks/event-types', bearer(platform));
    expect(reply.status).toBe(200);
    expect(reply.body.data.map((entry: { type: string }) => entry.type)).toEqual([...WEBHOOK_EVENT_TYPES]);
    for (const entry of reply.body.data) {
      expect(entry.description.length).toBeGreaterThan(10);
      expect(entry.example).toMatchObject({ type: entry.type, timestamp: expect.any(String), data: { orgId: expect.any(String), actor: expect.any(String) } });
      // Every event but audit.chain_broken is an audit event, placed in the chain.
      if (entry.type !== 'audit.chain_broken') expect(entry.example.data).toMatchObject({ auditEventId: expect.any(String), auditSequence: expect.any(Number) });
    }
  });

  it('needs webhooks:write to change and webhooks:read to read', async () => {
    const reader = await newTenant(undefined, ['webhooks:read']);
    const hook = await receiver();
    expect((await subscribe(reader.admin, { url: hook.url, eventTypes: ['*'] })).status).toBe(403);
    expect((await send(server, '/api/v1/webhooks', bearer(reader.admin))).status).toBe(200);
    const nobody = await newTenant(undefined, ['agents:read']);
    expect((await send(server, '/api/v1/webhooks', bearer(nobody.admin))).status).toBe(403);
    expect((await send(server, '/api/v1/webhooks/event-types', bearer(nobody.admin))).status).toBe(403);
  });

  it('refuses what is not a valid endpoint', async () => {
    const tenant = await newTenant();
    const hook = await receiver();
    for (const body of [
      { url: hook.url, eventTypes: [] },
      { url: hook.url, eventTypes: ['agent.exploded'] },
      { url: 'ftp://127.0.0.1/x', eventTypes: ['*'] },
      { url: 'http://user:pass@127.0.0.1/x', eventTypes: ['*'] },
      { url: hook.url, eventTypes: ['*'], secret: 'whsec_mine' },
      { eventTypes: ['*'] },
    ]) {
      const reply = await subscribe(tenant.admin, body);
      expect(reply.status).toBe(400);
      expect(reply.body.code).toBe('VALIDATION_ERROR');
    }
    const created = await subscribe(tenant.admin, { url: hook.url, eventTypes: ['*', '*', 'agent.created'] });
    expect(created.body.eventTypes).toEqual(['*', 'agent.created']);
    expect((await send(server, `/api/v1/webhooks/${created.body.webhookId}`, json('PATCH', {}, tenant.admin))).status).toBe(400);
    expect((await send(server, `/api/v1/webhooks/not-a-uuid`, bearer(tenant.admin))).status).toBe(400);
    expect((await send(server, `/api/v1/webhooks/${created.body.webhookId}/deliveries/0/attempts`, bearer(tenant.admin))).status).toBe(400);
  });

  it('keeps organizations apart: another\'s endpoint is 404, and its events never reach this one', async () => {
    const [a, b] = [await newTenant(), await newTenant()];
    const [hookA, hookB] = [await receiver(), await receiver()];
    const endpointA = (await subscribe(a.admin, { url: hookA.url, eventTypes: ['*'] })).body;
    await subscribe(b.admin, { url: hookB.url, eventTypes: ['*'] });
    const id = endpointA.webhookId;
    for (const [method, path, body] of [
      ['GET', `/api/v1/webhooks/${id}`],
      ['PATCH', `/api/v1/webhooks/${id}`, { enabled: false }],
      ['DELETE', `/api/v1/webhooks/${id}`],
      ['POST', `/api/v1/webhooks/${id}/test`],
      ['POST', `/api/v1/webhooks/${id}/secret/rotate`, {}],
      ['GET', `/api/v1/webhooks/${id}/deliveries`],
      ['POST', `/api/v1/webhooks/${id}/recover`, { since: new Date().toISOString() }],
    ] as const) {
      const reply = await send(server, path, body ? json(method, body, b.admin) : bearer(b.admin, { method }));
      expect([method, path, reply.status]).toEqual([method, path, 404]);
    }
    expect((await send(server, `/api/v1/webhooks?orgId=${a.orgId}`, bearer(b.admin))).status).toBe(404);
    expect((await send(server, '/api/v1/webhooks', bearer(b.admin))).body.data.map((e: { webhookId: string }) => e.webhookId)).not.toContain(id);

    const agentOfA = await createAgent(server, a.admin, { name: 'a-worker', scopes: ['agents:read'] });
    await createAgent(server, b.admin, { name: 'b-worker', scopes: ['agents:read'] });
    await hookA.waitFor(2);
    await hookB.waitFor(2);
    await wait(500);
    const orgsSeenByA = new Set(hookA.received.map((delivery) => JSON.parse(delivery.body).data.orgId));
    expect([...orgsSeenByA]).toEqual([a.orgId]);
    expect(hookA.received.some((delivery) => JSON.parse(delivery.body).data.agentId === agentOfA.agentId)).toBe(true);
    expect(hookB.received.every((delivery) => JSON.parse(delivery.body).data.orgId === b.orgId)).toBe(true);
  });

  it('sends platform events to the platform organization only', async () => {
    const tenant = await newTenant();
    const [tenantHook, platformHook] = [await receiver(), await receiver()];
    await subscribe(tenant.admin, { url: tenantHook.url, eventTypes: ['*'] });
    const mine = (await subscribe(platform, { url: platformHook.url, eventTypes: ['signing_key.rotated'] })).body;
    const rotated = await keyServiceOf(server).rotate(OPERATOR_CALLER, 'RS256');
    const [delivery] = await platformHook.waitFor(1);
    expect(new Webhook(mine.secret).verify(delivery!.body, delivery!.headers)).toMatchObject({ type: 'signing_key.rotated', data: { kid: rotated.kid } });
    await wait(800);
    expect(tenantHook.received.map((received) => JSON.parse(received.body).type)).not.toContain('signing_key.rotated');
    await send(server, `/api/v1/webhooks/${mine.webhookId}`, bearer(platform, { method: 'DELETE' }));
  });

  it('tells the platform when the audit chain loses a signed digest\'s head (audit.chain_broken, once, not written to the chain)', async () => {
    const hook = await receiver();
    const mine = (await subscribe(platform, { url: hook.url, eventTypes: ['audit.chain_broken'] })).body;
    const { keys, clock, knex } = server.deps;
    const logger = pino({ level: 'silent' });
    const emit = () => emitDigest(knex, logger, clock, { sign: (typ, payload) => keys.signDocument(typ, payload), intervalSeconds: 1 });
    await createAgent(server, platform, { name: 'chained' });
    await emit();
    const newest = await knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq', 'desc').limit(2).pluck('id');
    await knex('audit_events').whereIn('id', newest).delete();
    const before = await knex('audit_events').count<{ count: string }[]>({ count: '*' });
    await emit();
    await emit();
    const [delivery] = await hook.waitFor(1);
    const digestSeq = String((await knex('audit_digests').max({ seq: 'seq' }))[0].seq);
    expect(new Webhook(mine.secret).verify(delivery!.body, delivery!.headers)).toMatchObject({ type: 'audit.chain_broken', data: { digestSeq, actor: 'system' } });
    expect(delivery!.headers['webhook-id']).toBe(`msg_chain_broken_${digestSeq}`);
    await wait(800);
    expect(hook.received).toHaveLength(1);
    expect(await knex('audit_events').count<{ count: string }[]>({ count: '*' })).toEqual(before);
    await send(server, `/api/v1/webhooks/${mine.webhookId}`, bearer(platform, { method: 'DELETE' }));
  });

  it('sends the event of a committed change and never one of a rolled-back change (the audit log is the outbox)', async () => {
    const tenant = await newTenant();
    const hook = await receiver();
    await subscribe(tenant.admin, { url: hook.url, eventTypes: ['agent.updated'] });
    const agent = await createAgent(server, tenant.admin, { name: 'outboxed', scopes: ['agents:read'] });
    const { knex } = server.deps;
    await expect(
      knex.transaction(async (trx) => {
        await appendAuditEvent(trx, { type: 'agent.updated', agentId: agent.agentId, actor: 'operator', data: { agentId: agent.agentId, attempt: 'rolled back' } });
        throw new Error('the change failed after its audit row');
      }),
    ).rejects.toThrow('the change failed');
    const committed = await send(server, `/api/v1/agents/${agent.agentId}`, json('PATCH', { description: 'committed' }, tenant.admin));
    expect(committed.status).toBe(200);
    const [delivery] = await hook.waitFor(1);
    await wait(800);
    expect(hook.received).toHaveLength(1);
    expect(JSON.parse(delivery!.body)).toMatchObject({ type: 'agent.updated', data: { agentId: agent.agentId, actor: expect.stringMatching(/^agent:/) } });
  });

  it('keeps the history of finished deliveries for 30 days', async () => {
    const tenant = await newTenant();
    const hook = await receiver();
    const { webhookId } = (await subscribe(tenant.admin, { url: hook.url, eventTypes: ['agent.created'] })).body;
    await createAgent(server, tenant.admin, { name: 'remembered' });
    await hook.waitFor(1);
    const history = async (): Promise<{ status: string }[]> => (await send(server, `/api/v1/webhooks/${webhookId}/deliveries`, bearer(tenant.admin))).body.data;
    const isSettled = (deliveries: { status: string }[]) => deliveries.length > 0 && deliveries.every((delivery) => delivery.status === 'succeeded');
    for (let i = 0; i < 50 && !isSettled(await history()); i += 1) await wait(100);
    const kept = await history();
    const prune = (days: number) => server.deps.knex.transaction((trx) => pruneWebhookHistory(trx, Date.now() + days * 86_400_000));
    await prune(29);
    expect(await history()).toEqual(kept);
    await prune(31);
    expect(await history()).toHaveLength(0);
  });

  it('holds an organization to its endpoint limit (403), 20 by default', async () => {
    const small = await newTenant({ maxWebhookEndpoints: 2 });
    const hook = await receiver();
    for (let i = 0; i < 2; i += 1) expect((await subscribe(small.admin, { url: hook.url, eventTypes: ['org.suspended'] })).status).toBe(201);
    const refused = await subscribe(small.admin, { url: hook.url, eventTypes: ['org.suspended'] });
    expect(refused).toMatchObject({ status: 403, body: { code: 'FORBIDDEN', message: expect.stringContaining('2 webhook endpoints') } });

    const unset = await newTenant();
    const made = await Promise.all(Array.from({ length: 21 }, () => subscribe(unset.admin, { url: hook.url, eventTypes: ['org.suspended'] })));
    expect(made.map((reply) => reply.status).sort()).toEqual([...Array(20).fill(201), 403]);
  });

  it('tells the organization when a monthly limit is first reached (quota.reached, once)', async () => {
    const tenant = await newTenant({ monthlyTokens: 2 });
    const hook = await receiver();
    const { secret } = (await subscribe(tenant.admin, { url: hook.url, eventTypes: ['quota.reached'] })).body;
    const agent = await createAgent(server, tenant.admin, { name: 'thirsty', scopes: ['agents:read'] });
    // The admin's token was the month's first grant; this is the second; then refusals.
    await getToken(server, agent.agentId, agent.clientSecret);
    for (let i = 0; i < 3; i += 1) {
      const refused = await send(server, '/api/v1/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${agent.agentId}&client_secret=${encodeURIComponent(agent.clientSecret)}` });
      expect(refused).toMatchObject({ status: 403, body: { error: 'unauthorized_client' } });
    }
    // Asking for the usage writes the refusals counted so far (else within 5 s).
    await send(server, `/api/v1/orgs/${tenant.orgId}/usage`, bearer(platform));
    const [delivery] = await hook.waitFor(1);
    expect(new Webhook(secret).verify(delivery!.body, delivery!.headers)).toMatchObject({ type: 'quota.reached', data: { reason: 'org_monthly_limit', orgId: tenant.orgId } });
    await send(server, `/api/v1/orgs/${tenant.orgId}/usage`, bearer(platform));
    await wait(800);
    expect(hook.received).toHaveLength(1);
  });
});

describe('five days of failures', () => {
  let clocked: TestServer;
  const clock = testClock();

  beforeAll(async () => {
    clocked = await startTestServer({ clock, env: { EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_RETRY_SCHEDULE_SECONDS: '0,60,60,60' } });
  });
  afterAll(() => clocked?.stop());

  it('disable an endpoint that never succeeds, and its organization\'s other endpoints are told', async () => {
    let admin = await adminToken(clocked);
    const failing = await startWebhookReceiver({ status: 500 });
    const watcher = await startWebhookReceiver();
    receivers.push(failing, watcher);
    const failingHook = (await send(clocked, '/api/v1/webhooks', json('POST', { url: failing.url, eventTypes: ['agent.created'] }, admin))).body;
    await send(clocked, '/api/v1/webhooks', json('POST', { url: watcher.url, eventTypes: ['webhook.endpoint_disabled'] }, admin));
    await createAgent(clocked, admin, { name: 'doomed' });
    await failing.waitFor(1);
    await wait(300);
    expect((await send(clocked, `/api/v1/webhooks/${failingHook.webhookId}`, bearer(admin))).body).toMatchObject({ enabled: true, failingSince: expect.any(String) });
    clock.advance(5 * 86_400_000 + 60_000);
    await failing.waitFor(2);
    const [told] = await watcher.waitFor(1);
    admin = await adminToken(clocked); // the first one expired in those five days
    expect(JSON.parse(told!.body)).toMatchObject({ type: 'webhook.endpoint_disabled', data: { webhookId: failingHook.webhookId, reason: 'failing' } });
    expect((await send(clocked, `/api/v1/webhooks/${failingHook.webhookId}`, bearer(admin))).body).toMatchObject({ enabled: false, disabledReason: 'failing' });
    const [delivery] = (await send(clocked, `/api/v1/webhooks/${failingHook.webhookId}/deliveries`, bearer(admin))).body.data;
    expect(delivery).toMatchObject({ status: 'failed', attempts: 2 });
  });
});
