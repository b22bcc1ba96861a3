import { GitHubJwksCache } from '../../server/src/github/jwks-cache.js';
import { IdTokenRejectedError, verifyGitHubIdToken } from '../../server/src/github/verify-id-token.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';

const AUDIENCE = 'https://idp.example.test';
const NOW = Math.floor(Date.now() / 1000);
let fake: FakeGitHubIssuer;
let jwks: GitHubJwksCache;

beforeAll(async () => {
  fake = await startFakeGitHubIssuer({ audience: AUDIENCE });
  jwks = new GitHubJwksCache({ issuer: fake.issuer });
});
afterAll(() => fake.close());

function verify(token: string, leewaySeconds?: number) {
  return verifyGitHubIdToken(token, { issuer: fake.issuer, audience: AUDIENCE, jwks, now: new Date(NOW * 1000), leewaySeconds });
}

/** A token shaped like GitHub's, issued at NOW unless `times` says otherwise. */
function mintAt(times: { iat?: number; nbf?: number; exp?: number }, claims: Record<string, unknown> = {}) {
  const iat = times.iat ?? NOW;
  return fake.mintIdToken({ iat, nbf: iat - 5, exp: iat + 300, ...times, ...claims });
}

async function reasonOf(token: Promise<string>, leewaySeconds?: number): Promise<string | undefined> {
  const error = await verify(await token, leewaySeconds).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  if (error === undefined) return undefined;
  expect(error).toBeInstanceOf(IdTokenRejectedError);
  return (error as IdTokenRejectedError).reason;
}

describe('verifyGitHubIdToken: time claims (leeway 60 s)', () => {
  it('accepts GitHub’s back-dated nbf (ten minutes before iat, as in GitHub’s example)', async () => {
    expect(await reasonOf(mintAt({ nbf: NOW - 600 }))).toBeUndefined();
  });

  it('accepts a token that expired less than the leeway ago', async () => {
    expect(await reasonOf(mintAt({ iat: NOW - 400, exp: NOW - 59 }))).toBeUndefined();
  });

  it.each([60, 61, 3600])('refuses a token that expired %i seconds ago', async (ago) => {
    expect(await reasonOf(mintAt({ iat: NOW - 4000, exp: NOW - ago }))).toBe(`expired at ${NOW - ago} (now ${NOW})`);
  });

  it('accepts an nbf up to the leeway in the future, and refuses one beyond', async () => {
    expect(await reasonOf(mintAt({ nbf: NOW + 60 }))).toBeUndefined();
    expect(await reasonOf(mintAt({ nbf: NOW + 61 }))).toBe(`not valid before ${NOW + 61} (now ${NOW})`);
  });

  it('accepts an iat up to the leeway in the future, and refuses one beyond', async () => {
    expect(await reasonOf(mintAt({ iat: NOW + 60, nbf: NOW }))).toBeUndefined();
    expect(await reasonOf(mintAt({ iat: NOW + 61, nbf: NOW }))).toBe(`issued in the future at ${NOW + 61} (now ${NOW})`);
  });

  it('refuses a token whose exp is not after its iat', async () => {
    expect(await reasonOf(mintAt({ iat: NOW, exp: NOW }))).toBe(`exp ${NOW} is not after iat ${NOW}`);
  });

  it('applies a smaller configured leeway', async () => {
    expect(await reasonOf(mintAt({ iat: NOW - 400, exp: NOW - 1 }), 0)).toBe(`expired at ${NOW - 1} (now ${NOW})`);
  });

  it.each(['exp', 'nbf', 'iat'])('refuses a token without %s', async (claim) => {
    expect(await reasonOf(fake.mintIdToken({}, { omit: [claim] }))).toBe(`claim ${claim} is required`);
  });

  it.each(['exp', 'nbf', 'iat'])('refuses a token whose %s is a string', async (claim) => {
    expect(await reasonOf(mintAt({}, { [claim]: String(NOW + 300) }))).toBe(`claim ${claim} must be a NumericDate`);
  });
});

describe('verifyGitHubIdToken: required and typed claims', () => {
  it.each([
    ['without jti', { omit: ['jti'] }, {}, 'claim jti is required'],
    ['with an empty jti', {}, { jti: '' }, 'claim jti is empty'],
    ['with a numeric jti', {}, { jti: 7 }, 'claim jti must be a string'],
    ['with an oversized jti', {}, { jti: 'j'.repeat(257) }, 'claim jti is longer than 256 characters'],
    ['without sub', { omit: ['sub'] }, {}, 'claim sub is required'],
    ['without repository', { omit: ['repository'] }, {}, 'claim repository is required'],
    ['without iss', { omit: ['iss'] }, {}, 'claim iss is required'],
    ['with a numeric repository_id', {}, { repository_id: 892312441 }, 'claim repository_id must be a string'],
    ['with an array ref', {}, { ref: ['refs/heads/main'] }, 'claim ref must be a string'],
    ['with a null environment', {}, { environment: null }, 'claim environment must be a string'],
  ])('refuses a token %s', async (_, options, claims, reason) => {
    expect(await reasonOf(fake.mintIdToken(claims, options))).toBe(reason);
  });

  it('keeps claims it does not type, for provenance', async () => {
    const claims = await verify(await mintAt({}, { workflow_sha: 'abc', enterprise: 'octo-enterprise' }));
    expect(claims).toMatchObject({ workflow_sha: 'abc', enterprise: 'octo-enterprise', run_number: '42' });
  });

  it('leaves out claims the token does not carry', async () => {
    const claims = await verify(await mintAt({}, {}));
    expect('environment' in claims).toBe(false);
  });
});
