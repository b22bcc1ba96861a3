/**
 * Webhook URLs and the egress guard, at save and at delivery, with no request leaving the
 * machine: names resolve through a stub resolver, and the only servers are on loopback.
 * Refused when saved: a name resolving to 127.0.0.1, the literal 169.254.169.254, an
 * IPv4-mapped IPv6 loopback, plain http. Refused when delivered: a name that resolved to a
 * public address when saved and to loopback now (DNS rebinding), and a redirect from a
 * receiver on loopback to another, which receives nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { adminToken, bearer, createAgent, json, send } from '../support/api.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';

const PUBLIC_ADDRESS = '93.184.216.34';

async function waitForAttempt(server: TestServer, admin: string, webhookId: string): Promise<{ statusCode: number | null; error: string | null }> {
  for (let i = 0; i < 100; i += 1) {
    const deliveries = await send(server, `/api/v1/webhooks/${webhookId}/deliveries`, bearer(admin));
    const [delivery] = deliveries.body.data;
    if (delivery && delivery.attempts > 0) {
      const attempts = await send(server, `/api/v1/webhooks/${webhookId}/deliveries/${delivery.deliveryId}/attempts`, bearer(admin));
      if (attempts.body.data.length > 0) return attempts.body.data[0];
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('no attempt was recorded');
}

describe('without EGRESS_ALLOW_CIDRS', () => {
  let server: TestServer;
  let admin: string;
  const answers = new Map<string, string>();
  const lookups: string[] = [];

  beforeAll(async () => {
    server = await startTestServer({
      env: { WEBHOOK_RETRY_SCHEDULE_SECONDS: '0' },
      resolve: async (hostname) => {
        lookups.push(hostname);
        const address = answers.get(hostname);
        if (!address) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
        return [{ address, family: address.includes(':') ? 6 : 4 }];
      },
    });
    admin = await adminToken(server);
  });
  afterAll(() => server?.stop());

  it.each([
    ['a name that resolves to 127.0.0.1', 'https://hooks.internal.test/x', () => answers.set('hooks.internal.test', '127.0.0.1')],
    ['the metadata address', 'https://169.254.169.254/latest/meta-data', () => undefined],
    ['an IPv4-mapped IPv6 loopback', 'https://[::ffff:127.0.0.1]/x', () => undefined],
    ['plain http to a public address', 'http://plain.example.test/x', () => answers.set('plain.example.test', PUBLIC_ADDRESS)],
    ['a name that does not resolve', 'https://nowhere.example.test/x', () => undefined],
  ])('refuses %s when it is saved (400, nothing created)', async (_name, url, arrange) => {
    arrange();
    const before = (await send(server, '/api/v1/webhooks', bearer(admin))).body.data.length;
    const reply = await send(server, '/api/v1/webhooks', json('POST', { url, eventTypes: ['*'] }, admin));
    expect(reply.status).toBe(400);
    expect(reply.body).toMatchObject({ code: 'VALIDATION_ERROR', message: expect.stringMatching(/^url cannot be used for webhooks/) });
    expect(reply.body.message).not.toMatch(/127\.0\.0\.1|169\.254|::ffff/); // where a name points is not told
    expect((await send(server, '/api/v1/webhooks', bearer(admin))).body.data).toHaveLength(before);
  });

  it('refuses a changed URL the same way', async () => {
    answers.set('ok.example.test', PUBLIC_ADDRESS);
    const created = await send(server, '/api/v1/webhooks', json('POST', { url: 'https://ok.example.test/x', eventTypes: ['org.suspended'] }, admin));
    expect(created.status).toBe(201);
    const patched = await send(server, `/api/v1/webhooks/${created.body.webhookId}`, json('PATCH', { url: 'https://169.254.169.254/' }, admin));
    expect(patched.status).toBe(400);
    await send(server, `/api/v1/webhooks/${created.body.webhookId}`, bearer(admin, { method: 'DELETE' }));
  });

  it.each([
    ['loopback', '127.0.0.1'],
    ['the metadata address', '169.254.169.254'],
    ['an IPv4-mapped IPv6 loopback', '::ffff:127.0.0.1'],
  ])('refuses at delivery a name that now resolves to %s, without connecting', async (_name, address) => {
    const receiver = await startWebhookReceiver();
    try {
      // Saved while the name pointed to a public address (only checked, never reached).
      const host = `rebind-${address.replace(/[.:]/g, '-')}.example.test`;
      answers.set(host, PUBLIC_ADDRESS);
      const url = `https://${host}:${new URL(receiver.url).port}/hooks`;
      const created = await send(server, '/api/v1/webhooks', json('POST', { url, eventTypes: ['agent.created'] }, admin));
      expect(created.status).toBe(201);
      answers.set(host, address);
      await createAgent(server, admin, { name: `rebound-${address}` });
      const attempt = await waitForAttempt(server, admin, created.body.webhookId);
      // Refused, and the history does not say which internal address the name resolved to.
      expect(attempt).toMatchObject({ statusCode: null, error: expect.stringMatching(/^refused: the host resolves to an address that is not allowed/) });
      expect(attempt.error).not.toContain(address);
      expect(receiver.received).toHaveLength(0);
      await send(server, `/api/v1/webhooks/${created.body.webhookId}`, bearer(admin, { method: 'DELETE' }));
    } finally {
      await receiver.close();
    }
  });
});

describe('with loopback allowed', () => {
  let server: TestServer;
  let admin: string;
  let target: WebhookReceiver;
  let redirector: WebhookReceiver;

  beforeAll(async () => {
    server = await startTestServer({ env: { EGRESS_ALLOW_CIDRS: '127.0.0.0/8', WEBHOOK_RETRY_SCHEDULE_SECONDS: '0' } });
    admin = await adminToken(server);
    target = await startWebhookReceiver();
    redirector = await startWebhookReceiver({ status: 307, headers: { location: target.url } });
  });
  afterAll(async () => {
    await Promise.all([target?.close(), redirector?.close()]);
    await server?.stop();
  });

  it('follows no redirect: the attempt fails and the redirect target receives nothing', async () => {
    const created = await send(server, '/api/v1/webhooks', json('POST', { url: redirector.url, eventTypes: ['agent.created'] }, admin));
    await createAgent(server, admin, { name: 'redirected' });
    const attempt = await waitForAttempt(server, admin, created.body.webhookId);
    expect(attempt).toMatchObject({ statusCode: null, error: expect.stringMatching(/redirect \(307\)/) });
    expect(redirector.received).toHaveLength(1);
    expect(target.received).toHaveLength(0);
  });
});
