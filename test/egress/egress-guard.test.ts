/**
 * The egress guard (server/src/egress/egress-guard.ts) against real HTTP(S) servers on
 * 127.0.0.1, with stub resolvers for names. Nothing here leaves the machine: a name is only
 * ever answered by a stub, and where a stub answers a non-loopback address, connecting is
 * made impossible (a spy on net.Socket#connect) so a regression fails instead of sending.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { createEgressFetch, EgressRefused } from '../../server/src/egress/egress-guard.js';
import { failure, listen, LOOPBACK, refusal, stub, withoutConnections } from '../support/egress.js';

interface Seen {
  connections: number;
  requests: Array<{ url: string; host: string | undefined; accept: string | undefined }>;
}

function handler(seen: Seen) {
  return (request: http.IncomingMessage, response: http.ServerResponse) => {
    seen.requests.push({ url: request.url ?? '', host: request.headers.host, accept: request.headers.accept });
    const body = (status: number, text: string, headers: Record<string, string> = {}) => {
      response.writeHead(status, { 'content-type': 'application/json', ...headers });
      response.end(text);
    };
    switch (new URL(request.url ?? '/', 'http://server').pathname) {
      case '/json':
        return body(200, JSON.stringify({ issuer: 'partner', keys: [] }));
      case '/redirect':
        return body(302, '', { location: '/json' });
      case '/big':
        return body(200, JSON.stringify({ pad: 'x'.repeat(2000) }));
      case '/big-chunked':
        response.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 20; i += 1) response.write('x'.repeat(100));
        return response.end();
      case '/slow':
        return; // never answers
      case '/status':
        return body(500, 'SECRET-BODY stack trace');
      case '/not-json':
        return body(200, 'SECRET-BODY <html>');
      case '/cut':
        response.writeHead(200, { 'content-length': '100' });
        response.write('{"partial":');
        setTimeout(() => response.socket?.destroy(), 20);
        return;
      default:
        return body(404, '{}');
    }
  };
}

describe('the egress guard over http on loopback', () => {
  const seen: Seen = { connections: 0, requests: [] };
  const server = http.createServer(handler(seen));
  let port: number;
  let base: string;
  beforeAll(async () => {
    port = await listen(server, seen);
    base = `http://127.0.0.1:${port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });
  afterEach(() => {
    seen.connections = 0;
    seen.requests = [];
  });

  it('refuses loopback by default, before connecting', async () => {
    const egress = createEgressFetch({ allowCidrs: [] });
    const error = await refusal(egress.fetchJson(`${base}/json`));
    expect(error.reason).toBe('address');
    expect(error.message).toContain('127.0.0.0/8 (loopback)');
    expect(seen.connections).toBe(0);
  });

  it('fetches JSON from a range the operator allows, with Accept: application/json', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    await expect(egress.fetchJson(`${base}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
    expect(seen.requests).toEqual([{ url: '/json', host: `127.0.0.1:${port}`, accept: 'application/json' }]);
    await expect(egress.fetchText(`${base}/json?a=1`)).resolves.toBe('{"issuer":"partner","keys":[]}');
    expect(seen.requests[1].url).toBe('/json?a=1');
  });

  it('judges IP literals in every spelling the URL parser accepts', async () => {
    const closed = createEgressFetch({ allowCidrs: [] });
    for (const host of ['127.0.0.1', '127.1', '0x7f.0.0.1', '2130706433', '[::ffff:127.0.0.1]', '[::ffff:7f00:1]', '[::1]', '[::]', '0.0.0.0']) {
      expect((await refusal(closed.fetchJson(`http://${host}:${port}/json`))).reason).toBe('address');
    }
    expect(seen.connections).toBe(0);
    const open = createEgressFetch({ allowCidrs: LOOPBACK });
    await expect(open.fetchJson(`http://[::ffff:127.0.0.1]:${port}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
    await expect(open.fetchJson(`http://0x7f.1:${port}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
  });

  it('(the connection spy sees a connection when there is one)', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const { result, attempts } = await withoutConnections(() => egress.fetchJson(`${base}/json`));
    expect([result.status, attempts]).toEqual(['rejected', 1]);
    expect(seen.connections).toBe(0);
  });

  it('refuses http to an address outside the allowed ranges, even a public one, without connecting', async () => {
    const { resolve } = stub('93.184.215.14');
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, resolve });
    const { result, attempts } = await withoutConnections(() => egress.fetchJson('http://partner.example.com/jwks'));
    expect(result.status).toBe('rejected');
    const error = (result as PromiseRejectedResult).reason as EgressRefused;
    expect(error).toBeInstanceOf(EgressRefused);
    expect(error.reason).toBe('scheme');
    expect(attempts).toBe(0);
  });

  it('refuses what is not http(s), a URL with credentials, and what is not a URL', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    expect((await refusal(egress.fetchJson('file:///etc/passwd'))).reason).toBe('scheme');
    expect((await refusal(egress.fetchJson('ftp://127.0.0.1/x'))).reason).toBe('scheme');
    expect((await refusal(egress.fetchJson('gopher://127.0.0.1/x'))).reason).toBe('scheme');
    const credentials = await refusal(egress.fetchJson(`http://user:hunter2@127.0.0.1:${port}/json`));
    expect(credentials.reason).toBe('url');
    expect(credentials.message).not.toContain('hunter2');
    expect((await refusal(egress.fetchJson('/json'))).reason).toBe('url');
    expect(seen.connections).toBe(0);
  });

  it('does not follow a redirect: a 3xx is refused', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const error = await refusal(egress.fetchJson(`${base}/redirect`));
    expect(error.reason).toBe('redirect');
    expect(seen.requests.map((request) => request.url)).toEqual(['/redirect']);
  });

  it('caps the body, whether its length is announced or not', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, maxBytes: 1000 });
    expect((await failure(egress.fetchJson(`${base}/big`))).reason).toBe('size');
    expect((await failure(egress.fetchText(`${base}/big-chunked`))).reason).toBe('size');
    await expect(createEgressFetch({ allowCidrs: LOOPBACK, maxBytes: 2000 }).fetchText(`${base}/big-chunked`)).resolves.toHaveLength(2000);
  });

  it('gives up at the deadline: a server that never answers, a resolver that never answers', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, timeoutMs: 200 });
    const started = Date.now();
    expect((await failure(egress.fetchJson(`${base}/slow`))).reason).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(2000);
    const stuck = createEgressFetch({ allowCidrs: LOOPBACK, timeoutMs: 200, resolve: () => new Promise(() => undefined) });
    expect((await failure(stuck.fetchJson('https://partner.example.com/jwks'))).reason).toBe('timeout');
  });

  it('fails on a status other than 2xx, a body that is not JSON, or a cut connection, never quoting the body', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK });
    const status = await failure(egress.fetchJson(`${base}/status`));
    expect([status.reason, status.status]).toEqual(['status', 500]);
    const json = await failure(egress.fetchJson(`${base}/not-json`));
    expect(json.reason).toBe('json');
    for (const error of [status, json]) expect(error.message).not.toContain('SECRET-BODY');
    expect((await failure(egress.fetchJson(`${base}/cut`))).reason).toBe('network');
    expect((await failure(egress.fetchJson(`http://127.0.0.1:1/json`))).reason).toBe('network');
  });

  it('refuses a name that resolves to a refused address, without connecting', async () => {
    const loopback = stub('127.0.0.1');
    const egress = createEgressFetch({ allowCidrs: [], resolve: loopback.resolve });
    const error = await refusal(egress.fetchJson(`https://partner.example.com:${port}/jwks`));
    expect(error.reason).toBe('address');
    expect(error.message).toContain('partner.example.com is at 127.0.0.1');
    expect(loopback.calls).toEqual(['partner.example.com']);
    expect(seen.connections).toBe(0);

    for (const answer of ['10.1.2.3', '169.254.169.254', '::ffff:192.168.1.1', 'fd12::1', '64:ff9b::a9fe:a9fe', '2002:a9fe:a9fe::1', '100.64.0.1', '0.0.0.0']) {
      const privateName = createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub(answer).resolve });
      const { result, attempts } = await withoutConnections(() => privateName.fetchJson('https://partner.example.com/jwks'));
      expect([result.status, ((result as PromiseRejectedResult).reason as EgressRefused).reason]).toEqual(['rejected', 'address']);
      expect(attempts).toBe(0);
    }
  });

  it('refuses a name when any of its addresses is refused: [public, private]', async () => {
    const egress = createEgressFetch({ allowCidrs: [], resolve: stub(['93.184.215.14', '10.0.0.7']).resolve });
    const { result, attempts } = await withoutConnections(() => egress.fetchJson('https://partner.example.com/jwks'));
    expect(((result as PromiseRejectedResult).reason as EgressRefused).reason).toBe('address');
    expect(((result as PromiseRejectedResult).reason as EgressRefused).message).toContain('10.0.0.7');
    expect(attempts).toBe(0);
  });

  it('connects to the address it checked, once per request, keeping the name for Host (DNS rebinding)', async () => {
    // A .test name no real resolver answers: were the address looked up again, the request would fail.
    const rebinding = stub('127.0.0.1', '10.0.0.1', '127.0.0.2');
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, resolve: rebinding.resolve });
    await expect(egress.fetchJson(`http://idp.partner.test:${port}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
    expect(rebinding.calls).toEqual(['idp.partner.test']);
    expect(seen.requests).toEqual([{ url: '/json', host: `idp.partner.test:${port}`, accept: 'application/json' }]);
    expect(seen.connections).toBe(1);

    // The name now answers a private address: refused, nothing sent.
    const { result, attempts } = await withoutConnections(() => egress.fetchJson(`http://idp.partner.test:${port}/json`));
    expect(((result as PromiseRejectedResult).reason as EgressRefused).reason).toBe('address');
    expect(attempts).toBe(0);
    // Then another loopback address, where nothing listens: the request goes there, not to the first.
    expect((await failure(egress.fetchJson(`http://idp.partner.test:${port}/json`))).reason).toBe('network');
    expect(rebinding.calls).toHaveLength(3);
    expect(seen.requests).toHaveLength(1);
  });

  it('fails when the name does not resolve, or resolves to nothing usable', async () => {
    const notFound = createEgressFetch({
      allowCidrs: LOOPBACK,
      resolve: async () => {
        throw Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' });
      },
    });
    const error = await failure(notFound.fetchJson('https://partner.example.com/jwks'));
    expect([error.reason, error.message]).toEqual(['resolve', 'https://partner.example.com/jwks: the host could not be resolved (ENOTFOUND)']);
    expect((await failure(createEgressFetch({ allowCidrs: LOOPBACK, resolve: async () => [] }).fetchJson('https://a.example/'))).reason).toBe('resolve');
    expect((await failure(createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub('not-an-ip').resolve }).fetchJson('https://a.example/'))).reason).toBe('resolve');
  });

  it('ignores HTTP_PROXY and HTTPS_PROXY', async () => {
    const saved = { HTTP_PROXY: process.env.HTTP_PROXY, http_proxy: process.env.http_proxy, HTTPS_PROXY: process.env.HTTPS_PROXY };
    Object.assign(process.env, { HTTP_PROXY: 'http://127.0.0.1:1', http_proxy: 'http://127.0.0.1:1', HTTPS_PROXY: 'http://127.0.0.1:1' });
    try {
      await expect(createEgressFetch({ allowCidrs: LOOPBACK }).fetchJson(`${base}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('refuses to start with an allowed range that is not a CIDR', () => {
    expect(() => createEgressFetch({ allowCidrs: ['127.0.0.0/8', 'localhost'] })).toThrow('not a CIDR: "localhost"');
  });
});

describe('the egress guard over https on loopback', () => {
  const seen: Seen = { connections: 0, requests: [] };
  let server: https.Server;
  let port: number;
  let cert: string;
  beforeAll(async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'egress-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '1',
      '-subj', '/CN=idp.partner.test', '-addext', 'subjectAltName=DNS:idp.partner.test',
      '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    ], { stdio: 'ignore' });
    cert = fs.readFileSync(path.join(dir, 'cert.pem'), 'utf8');
    server = https.createServer({ key: fs.readFileSync(path.join(dir, 'key.pem')), cert }, handler(seen));
    fs.rmSync(dir, { recursive: true, force: true });
    port = await listen(server, seen);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('verifies the certificate against the name while connecting to the checked address', async () => {
    const egress = createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub('127.0.0.1').resolve, ca: cert });
    await expect(egress.fetchJson(`https://idp.partner.test:${port}/json`)).resolves.toEqual({ issuer: 'partner', keys: [] });
    expect(seen.requests.at(-1)?.host).toBe(`idp.partner.test:${port}`);
  });

  it('refuses a certificate for another name, and one from an untrusted CA', async () => {
    const otherName = createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub('127.0.0.1').resolve, ca: cert });
    expect((await failure(otherName.fetchJson(`https://other.partner.test:${port}/json`))).reason).toBe('network');
    const untrusted = createEgressFetch({ allowCidrs: LOOPBACK, resolve: stub('127.0.0.1').resolve });
    expect((await failure(untrusted.fetchJson(`https://idp.partner.test:${port}/json`))).reason).toBe('network');
  });

  it('refuses loopback over https too unless allowed', async () => {
    const before = seen.connections;
    const egress = createEgressFetch({ allowCidrs: [], resolve: stub('127.0.0.1').resolve, ca: cert });
    expect((await refusal(egress.fetchJson(`https://idp.partner.test:${port}/json`))).reason).toBe('address');
    expect(seen.connections).toBe(before);
  });
});
