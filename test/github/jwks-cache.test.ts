import { generateKeyPair, type CryptoKey } from 'jose';
import { GitHubJwksCache, IssuerUnavailableError } from '../../server/src/github/jwks-cache.js';
import { IdTokenRejectedError, verifyGitHubIdToken } from '../../server/src/github/verify-id-token.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';

const AUDIENCE = 'https://idp.example.test';
const TTL_SECONDS = 600;
const INTERVAL_SECONDS = 10;
let fake: FakeGitHubIssuer;
let clockMs: number;
let jwks: GitHubJwksCache;

beforeEach(async () => {
  fake = await startFakeGitHubIssuer({ audience: AUDIENCE });
  clockMs = Date.now();
  jwks = new GitHubJwksCache({
    issuer: fake.issuer,
    ttlSeconds: TTL_SECONDS,
    refreshIntervalSeconds: INTERVAL_SECONDS,
    staleLimitSeconds: 3600,
    now: () => clockMs,
  });
});
afterEach(() => fake.close());

function verify(token: string) {
  return verifyGitHubIdToken(token, { issuer: fake.issuer, audience: AUDIENCE, jwks });
}

function advanceSeconds(seconds: number): void {
  clockMs += seconds * 1000;
}

let foreignKey: CryptoKey;
let unknownKids = 0;

beforeAll(async () => {
  foreignKey = (await generateKeyPair('RS256')).privateKey;
});

function tokenWithUnknownKid(): Promise<string> {
  unknownKids += 1;
  return fake.mintIdToken({}, { key: foreignKey, kid: `unknown-${unknownKids}` });
}

describe('GitHubJwksCache: outages', () => {
  it('fails closed with IssuerUnavailableError when the issuer is down and nothing is cached, and recovers by itself', async () => {
    fake.setAvailable(false);
    await expect(verify(await fake.mintIdToken())).rejects.toBeInstanceOf(IssuerUnavailableError);
    await expect(verify(await fake.mintIdToken())).rejects.toThrow(/openid-configuration answered HTTP 503/);
    fake.setAvailable(true);
    await expect(verify(await fake.mintIdToken())).resolves.toMatchObject({ iss: fake.issuer });
  });

  it('keeps verifying with cached keys during an outage, also once they are past their TTL', async () => {
    await verify(await fake.mintIdToken());
    fake.setAvailable(false);
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
    advanceSeconds(TTL_SECONDS + 1);
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
  });

  it('stops trusting cached keys past the stale limit and fails closed until the issuer is back', async () => {
    await verify(await fake.mintIdToken());
    fake.setAvailable(false);
    advanceSeconds(3600);
    await expect(verify(await fake.mintIdToken())).rejects.toBeInstanceOf(IssuerUnavailableError);
    fake.setAvailable(true);
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
  });

  it('answers "unavailable", not "bad token", for an unknown kid while the issuer is down (it may be a new key)', async () => {
    await verify(await fake.mintIdToken());
    fake.setAvailable(false);
    await fake.rotateKeys();
    await expect(verify(await fake.mintIdToken())).rejects.toBeInstanceOf(IssuerUnavailableError);
    fake.setAvailable(true);
    advanceSeconds(INTERVAL_SECONDS);
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
  });
});

describe('GitHubJwksCache: refreshes', () => {
  it('fetches the keys once for concurrent first lookups', async () => {
    const tokens = await Promise.all(Array.from({ length: 10 }, () => fake.mintIdToken()));
    await Promise.all(tokens.map(verify));
    expect(fake.jwksRequests).toBe(1);
  });

  it('serves the cached keys within the TTL and fetches them again after it', async () => {
    await verify(await fake.mintIdToken());
    advanceSeconds(TTL_SECONDS - 1);
    await verify(await fake.mintIdToken());
    expect(fake.jwksRequests).toBe(1);
    advanceSeconds(1);
    await verify(await fake.mintIdToken());
    expect(fake.jwksRequests).toBe(2);
  });

  it('picks up a rotated key without a restart, and drops the rotated-out one', async () => {
    const before = await fake.mintIdToken();
    await verify(before);
    await fake.rotateKeys();
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
    expect(fake.jwksRequests).toBe(2);
    await expect(verify(before)).rejects.toMatchObject({
      reason: expect.stringMatching(/is not in the issuer's JWKS$/),
    });
  });

  it('refreshes for unknown kids at most once per interval', async () => {
    await verify(await fake.mintIdToken());
    for (let i = 0; i < 20; i += 1) {
      await expect(verify(await tokenWithUnknownKid())).rejects.toBeInstanceOf(IdTokenRejectedError);
    }
    expect(fake.jwksRequests).toBe(2);
    advanceSeconds(INTERVAL_SECONDS - 1);
    await expect(verify(await tokenWithUnknownKid())).rejects.toBeInstanceOf(IdTokenRejectedError);
    expect(fake.jwksRequests).toBe(2);
    advanceSeconds(1);
    await expect(verify(await tokenWithUnknownKid())).rejects.toBeInstanceOf(IdTokenRejectedError);
    expect(fake.jwksRequests).toBe(3);
  });

  it('lets concurrent lookups of unknown kids share one refresh', async () => {
    await verify(await fake.mintIdToken());
    const tokens = await Promise.all(Array.from({ length: 20 }, () => tokenWithUnknownKid()));
    const outcomes = await Promise.allSettled(tokens.map(verify));
    expect(outcomes.every((outcome) => outcome.status === 'rejected' && outcome.reason instanceof IdTokenRejectedError)).toBe(true);
    expect(fake.jwksRequests).toBe(2);
  });

  it('lets concurrent tokens signed with a new key all through on one shared refresh', async () => {
    await verify(await fake.mintIdToken());
    await fake.rotateKeys();
    const tokens = await Promise.all(Array.from({ length: 10 }, () => fake.mintIdToken()));
    const outcomes = await Promise.allSettled(tokens.map(verify));
    expect(outcomes.map((outcome) => outcome.status)).toEqual(Array(10).fill('fulfilled'));
    expect(fake.jwksRequests).toBe(2);
  });

  it('does not fetch twice when the very first lookup is for an unknown kid', async () => {
    await expect(verify(await tokenWithUnknownKid())).rejects.toBeInstanceOf(IdTokenRejectedError);
    expect(fake.jwksRequests).toBe(1);
  });

  it('lets a key rotated just after a routine load through at once', async () => {
    await verify(await fake.mintIdToken());
    advanceSeconds(1);
    await fake.rotateKeys();
    await expect(verify(await fake.mintIdToken())).resolves.toBeDefined();
  });
});
