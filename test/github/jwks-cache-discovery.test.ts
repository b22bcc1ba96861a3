/**
 * What the cache accepts from an issuer's discovery document and JWKS. These issuers
 * misbehave on purpose, so they are tiny local servers rather than the GitHub fake.
 */
import { generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import { GitHubJwksCache, IssuerUnavailableError } from '../../server/src/github/jwks-cache.js';

interface Reply {
  status?: number;
  body?: unknown;
  raw?: string;
  headers?: Record<string, string>;
  isHanging?: boolean;
}

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(
    servers.splice(0).map(
      (server) =>
        new Promise((resolve) => {
          server.close(resolve);
          server.closeAllConnections();
        }),
    ),
  );
});

async function startIssuer(routes: (issuer: string) => Record<string, Reply>): Promise<string> {
  const server = http.createServer((request, response) => {
    const reply = routes(issuer)[request.url ?? ''] ?? { status: 404, body: {} };
    if (reply.isHanging) return;
    response.writeHead(reply.status ?? 200, { 'content-type': 'application/json', ...reply.headers });
    response.end(reply.raw ?? JSON.stringify(reply.body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return issuer;
}

function discovery(issuer: string, overrides: Record<string, unknown> = {}): Record<string, Reply> {
  return { '/.well-known/openid-configuration': { body: { issuer, jwks_uri: `${issuer}/jwks`, ...overrides } } };
}

async function rsaJwk(kid: string, extra: Partial<JWK> = {}): Promise<JWK> {
  const { publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(publicKey)), kid, ...extra };
}

async function unavailableReason(issuer: string, timeoutMs?: number): Promise<string> {
  const error = await new GitHubJwksCache({ issuer, timeoutMs }).getKey('any').then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(IssuerUnavailableError);
  return (error as IssuerUnavailableError).reason;
}

describe('GitHubJwksCache: discovery', () => {
  it('finds the keys through jwks_uri of the discovery document', async () => {
    const jwk = await rsaJwk('k1', { use: 'sig', alg: 'RS256' });
    const issuer = await startIssuer((base) => ({ ...discovery(base), '/jwks': { body: { keys: [jwk] } } }));
    expect(await new GitHubJwksCache({ issuer }).getKey('k1')).toBeDefined();
  });

  it.each([
    ['a trailing slash', (issuer: string) => `${issuer}/`],
    ['another host', (issuer: string) => issuer.replace('127.0.0.1', 'localhost')],
    ['https', (issuer: string) => issuer.replace('http:', 'https:')],
  ])('refuses a discovery document whose issuer differs by %s', async (_, lookAlike) => {
    const issuer = await startIssuer((base) => discovery(base, { issuer: lookAlike(base) }));
    expect(await unavailableReason(issuer)).toMatch(/^discovery issuer ".*" is not http:\/\/127\.0\.0\.1:\d+$/);
  });

  it.each([
    ['plain http on a public host', 'http://jwks.example.com/keys', /is not https/],
    ['missing', undefined, /no valid jwks_uri/],
    ['not a URL', 'keys.json', /no valid jwks_uri/],
    ['another scheme', 'file:///etc/keys.json', /is not https/],
  ])('refuses a jwks_uri that is %s', async (_, jwksUri, reason) => {
    const issuer = await startIssuer((base) => discovery(base, { jwks_uri: jwksUri }));
    expect(await unavailableReason(issuer)).toMatch(reason);
  });

  it('does not follow redirects', async () => {
    const issuer = await startIssuer((base) => ({
      '/.well-known/openid-configuration': { status: 302, headers: { location: `${base}/real` } },
      '/real': { body: { issuer: base, jwks_uri: `${base}/jwks` } },
    }));
    expect(await unavailableReason(issuer)).toMatch(/fetch failed/);
  });

  it('gives up on an issuer that does not answer within the timeout', async () => {
    const issuer = await startIssuer(() => ({ '/.well-known/openid-configuration': { isHanging: true } }));
    const startedMs = Date.now();
    expect(await unavailableReason(issuer, 200)).toMatch(/timeout|aborted/i);
    expect(Date.now() - startedMs).toBeLessThan(4_000); // the 200 ms timeout, with room for a busy machine; a hang would be far longer
  });

  it('treats a JWKS that is not JSON as an outage', async () => {
    const issuer = await startIssuer((base) => ({ ...discovery(base), '/jwks': { raw: '<html>' } }));
    expect(await unavailableReason(issuer)).toMatch(/JSON/);
  });
});

describe('GitHubJwksCache: usable keys', () => {
  it('uses only RSA signing keys for RS256 of at least 2048 bits with a unique kid', async () => {
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'jwk' });
    const ec = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    const keys = [
      await rsaJwk('plain'),
      await rsaJwk('sig-rs256', { use: 'sig', alg: 'RS256' }),
      await rsaJwk('encryption', { use: 'enc' }),
      await rsaJwk('rs512', { alg: 'RS512' }),
      await rsaJwk('ps256', { alg: 'PS256' }),
      { ...ec, kid: 'ec' },
      { ...small, kid: 'small' },
      await rsaJwk('twice'),
      await rsaJwk('twice'),
      await rsaJwk(''),
    ];
    const issuer = await startIssuer((base) => ({ ...discovery(base), '/jwks': { body: { keys } } }));
    const cache = new GitHubJwksCache({ issuer });
    const usable = [];
    for (const kid of ['plain', 'sig-rs256', 'encryption', 'rs512', 'ps256', 'ec', 'small', 'twice', '']) {
      if ((await cache.getKey(kid)) !== undefined) usable.push(kid);
    }
    expect(usable).toEqual(['plain', 'sig-rs256']);
  });

  it('treats a JWKS without a usable key as an outage, so it never replaces working keys', async () => {
    const ec = await exportJWK((await generateKeyPair('ES256', { extractable: true })).publicKey);
    let keys: JWK[] = [await rsaJwk('k1')];
    const issuer = await startIssuer((base) => ({ ...discovery(base), '/jwks': { body: { keys } } }));
    let clockMs = Date.now();
    const cache = new GitHubJwksCache({ issuer, ttlSeconds: 60, now: () => clockMs });
    expect(await cache.getKey('k1')).toBeDefined();
    keys = [{ ...ec, kid: 'ec' }];
    clockMs += 61_000;
    expect(await cache.getKey('k1')).toBeDefined();
    expect(await unavailableReason(issuer)).toBe('JWKS has no usable RS256 signing key');
  });
});
