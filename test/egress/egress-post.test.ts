/**
 * The egress guard's POST (webhook deliveries) and checkUrl (a webhook URL being saved),
 * against real HTTP receivers on 127.0.0.1 with stub resolvers. Nothing here leaves the
 * machine: refused addresses are only ever judged, with a spy that makes any connection
 * fail, and loopback receivers that count their connections.
 */
import http from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createEgressFetch, EGRESS_RESPONSE_PREFIX_BYTES, EgressRefused } from '../../server/src/egress/egress-guard.js';
import { close, failure, listen, LOOPBACK, refusal, stub, withoutConnections } from '../support/egress.js';

interface Received {
  method: string | undefined;
  url: string | undefined;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface Receiver {
  connections: number;
  received: Received[];
  /** Closed responses of /endless: the guard hung up once it had its prefix. */
  hungUp: number;
}

/** 5 KiB that differ byte by byte, so a prefix is checked exactly. */
const FIVE_KIB = Buffer.from(Array.from({ length: 5 * 1024 }, (_, index) => String.fromCharCode(97 + (index % 26))).join(''));

function receiver(state: Receiver, redirectTo: () => string) {
  return (request: http.IncomingMessage, response: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      state.received.push({ method: request.method, url: request.url, headers: request.headers, body: Buffer.concat(chunks) });
      switch (request.url) {
        case '/ok':
          response.writeHead(200, { 'content-type': 'text/plain', 'x-receiver': 'one' });
          return response.end('accepted');
        case '/gone':
          response.writeHead(410, { 'content-type': 'application/json' });
          return response.end('{"error":"no such hook"}');
        case '/busy':
          response.writeHead(503, { 'retry-after': '120' });
          return response.end('try later');
        case '/big':
          response.writeHead(200, { 'content-type': 'text/plain' });
          return response.end(FIVE_KIB);
        case '/endless':
          // More than the prefix, then nothing and no end: only a guard that stops reading answers.
          response.writeHead(200, { 'content-type': 'text/plain' });
          response.on('close', () => {
            state.hungUp += 1;
          });
          return response.write(FIVE_KIB.subarray(0, 2 * 1024));
        case '/redirect':
          response.writeHead(307, { location: redirectTo() });
          return response.end();
        case '/silent':
          return; // never answers
        default:
          response.writeHead(404);
          return response.end();
      }
    });
  };
}

const DELIVERY = '{"event":"agent.created","name":"Zoë ✓"}';
const deliveryHeaders = { 'content-type': 'application/json', 'user-agent': 'SentryAgent-Webhooks/1', 'x-signature': 'sha256=abc' };

describe('POST through the egress guard', () => {
  const hooks: Receiver = { connections: 0, received: [], hungUp: 0 };
  const target: Receiver = { connections: 0, received: [], hungUp: 0 };
  let targetPort: number;
  const hookServer = http.createServer(receiver(hooks, () => `http://127.0.0.1:${targetPort}/ok`));
  const targetServer = http.createServer(receiver(target, () => ''));
  let port: number;
  let base: string;
  beforeAll(async () => {
    port = await listen(hookServer, hooks);
    targetPort = await listen(targetServer, target);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    await Promise.all([close(hookServer), close(targetServer)]);
  });
  afterEach(() => {
    for (const state of [hooks, target]) Object.assign(state, { connections: 0, received: [], hungUp: 0 });
  });

  it('delivers the method, the headers and the exact body to an allowed receiver, with Host and Content-Length set', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const response = await egress.post(`${base}/ok`, { headers: deliveryHeaders, body: DELIVERY });
    expect(response).toEqual({ status: 200, headers: expect.objectContaining({ 'x-receiver': 'one' }), bodyPrefix: 'accepted', durationMs: expect.any(Number) });
    expect(hooks.received).toHaveLength(1);
    const [delivery] = hooks.received;
    expect([delivery.method, delivery.url, delivery.body.toString('utf8')]).toEqual(['POST', '/ok', DELIVERY]);
    expect(delivery.headers).toMatchObject({
      ...deliveryHeaders,
      host: `127.0.0.1:${port}`,
      'content-length': String(Buffer.byteLength(DELIVERY)),
    });
    expect(Buffer.byteLength(DELIVERY)).toBeGreaterThan(DELIVERY.length); // the length counts bytes, not characters

    const bytes = Buffer.from([0, 1, 2, 0xff, 0xfe]);
    await egress.post(`${base}/ok`, { headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    expect(hooks.received[1].body).toEqual(bytes);
  });

  it('answers 4xx and 5xx as values, with their headers and body prefix', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const gone = await egress.post(`${base}/gone`, { headers: deliveryHeaders, body: DELIVERY });
    expect([gone.status, gone.bodyPrefix, gone.headers['content-type']]).toEqual([410, '{"error":"no such hook"}', 'application/json']);
    const busy = await egress.post(`${base}/busy`, { headers: deliveryHeaders, body: DELIVERY });
    expect([busy.status, busy.bodyPrefix, busy.headers['retry-after']]).toEqual([503, 'try later', '120']);
  });

  it('keeps exactly the first 1024 bytes of a larger body', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const response = await egress.post(`${base}/big`, { headers: deliveryHeaders, body: DELIVERY });
    expect(EGRESS_RESPONSE_PREFIX_BYTES).toBe(1024);
    expect(response.status).toBe(200);
    expect(response.bodyPrefix).toBe(FIVE_KIB.subarray(0, 1024).toString('utf8'));
  });

  it('stops reading after the prefix and hangs up, although the body never ends', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, timeoutMs: 2_000 });
    const response = await egress.post(`${base}/endless`, { headers: deliveryHeaders, body: DELIVERY });
    expect(response.bodyPrefix).toBe(FIVE_KIB.subarray(0, 1024).toString('utf8'));
    expect(response.durationMs).toBeLessThan(2_000);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(hooks.hungUp).toBe(1);
  });

  it('refuses a redirect; its target receives nothing', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const error = await refusal(egress.post(`${base}/redirect`, { headers: deliveryHeaders, body: DELIVERY }));
    expect(error.reason).toBe('redirect');
    expect(hooks.received.map((delivery) => delivery.url)).toEqual(['/redirect']);
    expect(target.connections).toBe(0);
  });

  it('refuses refused addresses by default, without connecting: a name at 127.0.0.1, the metadata address, mapped loopback', async () => {
    const egress = createEgressFetch({ allowCidrs: [], resolve: stub('127.0.0.1').resolve });
    for (const url of [`https://hooks.partner.test:${port}/ok`, 'https://169.254.169.254/', 'https://[::ffff:127.0.0.1]/', `http://[::ffff:127.0.0.1]:${port}/ok`]) {
      const { result, attempts } = await withoutConnections(() => egress.post(url, { headers: deliveryHeaders, body: DELIVERY }));
      expect(result.status).toBe('rejected');
      const error = (result as PromiseRejectedResult).reason as EgressRefused;
      expect(error).toBeInstanceOf(EgressRefused);
      expect([url, error.reason]).toEqual([url, 'address']);
      expect(attempts).toBe(0);
    }
    // Without the spy too: the receiver never sees a connection.
    expect((await refusal(egress.post(`https://hooks.partner.test:${port}/ok`, { headers: {}, body: '' }))).reason).toBe('address');
    expect(hooks.connections).toBe(0);
  });

  it('gives up at the timeout the caller gives, when the receiver never answers', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const started = Date.now();
    const error = await failure(egress.post(`${base}/silent`, { headers: deliveryHeaders, body: DELIVERY, timeoutMs: 200 }));
    expect(error.reason).toBe('timeout');
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(hooks.received.map((delivery) => delivery.url)).toEqual(['/silent']);
  });

  it('fails with network when nothing listens', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    expect((await failure(egress.post('http://127.0.0.1:1/ok', { headers: {}, body: DELIVERY }))).reason).toBe('network');
  });
});

describe('checkUrl', () => {
  const hooks: Receiver = { connections: 0, received: [], hungUp: 0 };
  const server = http.createServer(receiver(hooks, () => ''));
  let port: number;
  beforeAll(async () => {
    port = await listen(server, hooks);
  });
  afterAll(() => close(server));

  it('refuses what a request would refuse, without connecting', async () => {
    const egress = createEgressFetch({ allowCidrs: [], resolve: stub('127.0.0.1').resolve });
    for (const url of [`https://hooks.partner.test:${port}/ok`, 'https://169.254.169.254/', 'https://[::ffff:127.0.0.1]/', `http://127.0.0.1:${port}/ok`]) {
      const { result, attempts } = await withoutConnections(() => egress.checkUrl(url));
      expect([url, ((result as PromiseRejectedResult).reason as EgressRefused).reason]).toEqual([url, 'address']);
      expect(attempts).toBe(0);
    }
    expect((await refusal(egress.checkUrl('ftp://hooks.partner.test/'))).reason).toBe('scheme');
    expect((await refusal(egress.checkUrl('https://user:pw@hooks.partner.test/'))).reason).toBe('url');
    expect((await refusal(egress.checkUrl('not a url'))).reason).toBe('url');
    const publicOverHttp = createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub('93.184.215.14').resolve });
    expect((await refusal(publicOverHttp.checkUrl('http://hooks.partner.test/'))).reason).toBe('scheme');
    expect(hooks.connections).toBe(0);
  });

  it('fails with resolve when the name does not resolve', async () => {
    const egress = createEgressFetch({
      allowCidrs: [],
      resolve: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      },
    });
    expect((await failure(egress.checkUrl('https://hooks.partner.test/'))).reason).toBe('resolve');
  });

  it('accepts an allowed URL after resolving it once, and connects to nothing', async () => {
    const names = stub('93.184.215.14');
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, resolve: names.resolve });
    const { result, attempts } = await withoutConnections(() => egress.checkUrl('https://hooks.partner.test/deliveries?x=1'));
    expect([result.status, attempts, names.calls]).toEqual(['fulfilled', 0, ['hooks.partner.test']]);
    await expect(egress.checkUrl(`http://127.0.0.1:${port}/ok`)).resolves.toBeUndefined();
    expect([hooks.connections, hooks.received]).toEqual([0, []]);
  });
});
