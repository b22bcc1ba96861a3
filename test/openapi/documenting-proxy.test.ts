import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { startDocumentingProxy, type DocumentingProxy } from '../support/documenting-proxy.js';

/** An upstream that answers whatever the test says, to hold the proxy to the document. */
let answer: { status: number; body: string } = { status: 200, body: '{"status":"ok"}' };
const upstream = http.createServer((_request, response) => {
  response.writeHead(answer.status, { 'content-type': 'application/json; charset=utf-8', 'x-request-id': 'r-1' });
  response.end(answer.body);
});
let proxy: DocumentingProxy;

beforeAll(async () => {
  await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  proxy = await startDocumentingProxy();
  proxy.setTarget(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`);
});
afterAll(async () => {
  await proxy.close();
  await new Promise((resolve) => upstream.close(resolve));
});

describe('the documenting proxy in front of the IdP', () => {
  it('relays a documented reply unchanged and finds nothing to report', async () => {
    answer = { status: 200, body: '{"status":"ok"}' };
    const response = await fetch(`${proxy.url}/healthz`);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBe('r-1');
    expect(await response.text()).toBe('{"status":"ok"}');
    expect(() => proxy.assertAllDocumented()).not.toThrow();
  });

  it('relays an undocumented reply too, and reports it', async () => {
    answer = { status: 200, body: '{"status":"ok","uptime":1}' };
    const response = await fetch(`${proxy.url}/healthz`);
    expect(await response.json()).toEqual({ status: 'ok', uptime: 1 });
    expect(() => proxy.assertAllDocumented()).toThrow(/1 replies relayed to a client did not match[\s\S]*GET \/healthz answered 200: [\s\S]*additional properties/);
    expect(() => proxy.assertAllDocumented()).not.toThrow();
  });

  it('cuts the connection when the upstream cannot be reached', async () => {
    const closed = await startDocumentingProxy();
    try {
      closed.setTarget('http://127.0.0.1:9');
      await expect(fetch(`${closed.url}/healthz`)).rejects.toThrow(/fetch failed/);
    } finally {
      await closed.close();
    }
  });
});
