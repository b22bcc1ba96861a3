/** The fake must behave like GitHub where tests rely on it, or the other tests prove nothing. */
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { loadClaimFixture } from '../support/github-claims.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';

let fake: FakeGitHubIssuer;
beforeAll(async () => {
  fake = await startFakeGitHubIssuer({ audience: 'https://idp.example.test' });
});
afterAll(() => fake.close());

function requestIdToken(query: string, authorization?: string): Promise<Response> {
  return fetch(`${fake.idTokenRequestUrl}${query}`, { headers: authorization === undefined ? {} : { authorization } });
}

describe('fake GitHub issuer: runner endpoint', () => {
  it.each([
    ['no bearer', undefined],
    ['another bearer', 'Bearer not-the-request-token'],
    ['the bare request token', 'REQUEST_TOKEN'],
  ])('answers 401 to a request with %s', async (_, authorization) => {
    const response = await requestIdToken('&audience=x', authorization?.replace('REQUEST_TOKEN', fake.idTokenRequestToken));
    expect(response.status).toBe(401);
  });

  it('mints a token for the requested audience with the runner claims', async () => {
    fake.setRunnerClaims(loadClaimFixture('pull-request'));
    const before = fake.runnerRequests;
    const response = await requestIdToken('&audience=https%3A%2F%2Fidp.example.test', `Bearer ${fake.idTokenRequestToken}`);
    const { value } = (await response.json()) as { value: string };
    expect(decodeJwt(value)).toMatchObject({ aud: 'https://idp.example.test', event_name: 'pull_request', ref: 'refs/pull/17/merge' });
    expect(fake.runnerRequests).toBe(before + 1);
    fake.setRunnerClaims({});
  });

  it('uses GitHub’s default audience, the owner’s URL, when none is requested', async () => {
    const response = await requestIdToken('', `Bearer ${fake.idTokenRequestToken}`);
    const { value } = (await response.json()) as { value: string };
    expect(decodeJwt(value).aud).toBe('https://github.com/octo-org');
  });
});

describe('fake GitHub issuer: tokens and discovery', () => {
  it('mints GitHub-shaped tokens: RS256 with kid and x5t, fresh jti, back-dated nbf, five-minute exp', async () => {
    const [first, second] = [await fake.mintIdToken(), await fake.mintIdToken()];
    const claims = decodeJwt(first);
    expect(decodeProtectedHeader(first)).toEqual({ typ: 'JWT', alg: 'RS256', kid: expect.any(String), x5t: expect.any(String) });
    expect(claims).toMatchObject({ ...loadClaimFixture('push-main'), iss: fake.issuer, aud: 'https://idp.example.test' });
    expect([claims.nbf, claims.exp]).toEqual([(claims.iat as number) - 5, (claims.iat as number) + 300]);
    expect(decodeJwt(second).jti).not.toBe(claims.jti);
  });

  it('leaves out omitted claims', async () => {
    expect('jti' in decodeJwt(await fake.mintIdToken({}, { omit: ['jti'] }))).toBe(false);
  });

  it('serves discovery and JWKS, and 503 for both when unavailable', async () => {
    const document = (await (await fetch(`${fake.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(document).toMatchObject({ issuer: fake.issuer, jwks_uri: `${fake.issuer}/.well-known/jwks` });
    fake.setAvailable(false);
    const statuses = await Promise.all(
      ['/.well-known/openid-configuration', '/.well-known/jwks'].map(async (path) => (await fetch(`${fake.issuer}${path}`)).status),
    );
    fake.setAvailable(true);
    expect(statuses).toEqual([503, 503]);
  });

  it('replaces its key on rotation, so the JWKS lists only the new kid', async () => {
    const oldKid = decodeProtectedHeader(await fake.mintIdToken()).kid;
    await fake.rotateKeys();
    const newKid = decodeProtectedHeader(await fake.mintIdToken()).kid;
    const { keys } = (await (await fetch(`${fake.issuer}/.well-known/jwks`)).json()) as { keys: { kid: string }[] };
    expect(newKid).not.toBe(oldKid);
    expect(keys.map((key) => key.kid)).toEqual([newKid]);
  });
});
