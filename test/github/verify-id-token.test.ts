import { createHmac, createPublicKey, generateKeyPairSync, sign as cryptoSign, webcrypto, type JsonWebKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { GitHubJwksCache } from '../../server/src/github/jwks-cache.js';
import { IdTokenRejectedError, verifyGitHubIdToken } from '../../server/src/github/verify-id-token.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';

const AUDIENCE = 'https://idp.example.test';
let fake: FakeGitHubIssuer;

beforeAll(async () => {
  fake = await startFakeGitHubIssuer({ audience: AUDIENCE });
});
afterAll(() => fake.close());

function verify(token: string) {
  return verifyGitHubIdToken(token, { issuer: fake.issuer, audience: AUDIENCE, jwks: new GitHubJwksCache({ issuer: fake.issuer }) });
}

async function expectRejected(token: string, reason: string | RegExp): Promise<void> {
  const error = await verify(token).then(
    () => undefined,
    (caught: unknown) => caught,
  );
  expect(error).toBeInstanceOf(IdTokenRejectedError);
  expect((error as IdTokenRejectedError).reason).toMatch(reason);
}

const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

async function foreignKey() {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

describe('verifyGitHubIdToken: accepted tokens', () => {
  it('accepts a token of the configured issuer and returns its typed claims', async () => {
    const claims = await verify(await fake.mintIdToken());
    expect(claims).toMatchObject({
      iss: fake.issuer,
      aud: AUDIENCE,
      repository: 'octo-org/octo-repo',
      repository_id: '892312441',
      ref: 'refs/heads/main',
      event_name: 'push',
      runner_environment: 'github-hosted',
    });
  });

  it('accepts a token fetched from the runner endpoint for our audience', async () => {
    const response = await fetch(`${fake.idTokenRequestUrl}&audience=${encodeURIComponent(AUDIENCE)}`, {
      headers: { authorization: `Bearer ${fake.idTokenRequestToken}` },
    });
    const { value } = (await response.json()) as { value: string };
    expect((await verify(value)).jti).toBe(decodeJwt(value).jti);
  });

  it('accepts an audience array of exactly our audience', async () => {
    expect((await verify(await fake.mintIdToken({ aud: [AUDIENCE] }))).aud).toBe(AUDIENCE);
  });
});

describe('verifyGitHubIdToken: algorithms and keys', () => {
  it.each(['none', 'None', 'NONE'])('refuses an unsigned token (alg %s)', async (alg) => {
    await expectRejected(await fake.mintIdToken({}, { alg: 'none', header: { alg } }), `alg "${alg}" is not RS256`);
  });

  it('refuses alg none even with a signature segment attached', async () => {
    const genuine = await fake.mintIdToken();
    const [, payload, signature] = genuine.split('.');
    await expectRejected(`${encode({ alg: 'none', typ: 'JWT' })}.${payload}.${signature}`, 'alg "none" is not RS256');
  });

  it.each([
    ['PEM', (jwk: JsonWebKey) => createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' })],
    ['DER', (jwk: JsonWebKey) => createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'der' })],
    ['JWK JSON', (jwk: JsonWebKey) => JSON.stringify(jwk)],
  ])('refuses HS256 keyed with the issuer’s public key as %s bytes', async (_, keyBytes) => {
    const { keys } = (await (await fetch(`${fake.issuer}/.well-known/jwks`)).json()) as { keys: JsonWebKey[] };
    const genuine = decodeJwt(await fake.mintIdToken());
    const signingInput = `${encode({ alg: 'HS256', typ: 'JWT', kid: keys[0].kid })}.${encode(genuine)}`;
    const signature = createHmac('sha256', keyBytes(keys[0])).update(signingInput).digest('base64url');
    await expectRejected(`${signingInput}.${signature}`, 'alg "HS256" is not RS256');
  });

  it.each(['ES256', 'RS512', 'PS256'])('refuses a token signed with %s', async (alg) => {
    const { privateKey } = await generateKeyPair(alg, { extractable: true });
    await expectRejected(await fake.mintIdToken({}, { alg, key: privateKey }), `alg "${alg}" is not RS256`);
  });

  it('refuses a foreign key under the issuer’s real kid', async () => {
    const { privateKey } = await foreignKey();
    const token = await fake.mintIdToken({}, { key: privateKey });
    expect(decodeProtectedHeader(token).kid).toBe(decodeProtectedHeader(await fake.mintIdToken()).kid);
    await expectRejected(token, /^signature verification failed$/);
  });

  it('refuses a foreign key under an unknown kid', async () => {
    const { privateKey } = await foreignKey();
    await expectRejected(await fake.mintIdToken({}, { key: privateKey, kid: 'attacker-kid' }), `kid "attacker-kid" is not in the issuer's JWKS`);
  });

  it('refuses a signature made with a weak RSA key even when the key set handed it over', async () => {
    // The JWKS cache drops keys under 2048 bits; the verifier does not rely on that alone.
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const header = encode({ alg: 'RS256', kid: 'weak', typ: 'JWT' });
    const payload = encode(decodeJwt(await fake.mintIdToken()));
    const signature = cryptoSign('sha256', Buffer.from(`${header}.${payload}`), weak.privateKey).toString('base64url');
    const weakKey = await webcrypto.subtle.importKey('spki', weak.publicKey.export({ type: 'spki', format: 'der' }), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['verify']);
    const error = await verifyGitHubIdToken(`${header}.${payload}.${signature}`, { issuer: fake.issuer, audience: AUDIENCE, jwks: { getKey: async () => weakKey } }).catch((caught: unknown) => caught);
    expect((error as IdTokenRejectedError).reason).toBe('the issuer key is not an RSA public key of at least 2048 bits');
  });

  it('refuses a genuine token whose claims were changed after signing', async () => {
    const [header, , signature] = (await fake.mintIdToken()).split('.');
    const forged = { ...decodeJwt(await fake.mintIdToken()), repository: 'octo-org/other-repo' };
    await expectRejected(`${header}.${encode(forged)}.${signature}`, /^signature verification failed$/);
  });

  it.each(['jku', 'x5u', 'jwk', 'x5c'])('refuses a token carrying its own key or key URL in %s', async (name) => {
    const { privateKey, publicJwk } = await foreignKey();
    const carried = { jku: 'https://attacker.example/jwks', x5u: 'https://attacker.example/cert.pem', jwk: publicJwk, x5c: ['MIIB'] }[name];
    const attacker = await fake.mintIdToken({}, { key: privateKey, kid: 'attacker-kid', header: { [name]: carried } });
    await expectRejected(attacker, `header carries ${name}`);
    // Even signed by the real key: nothing in a token may name a key.
    await expectRejected(await fake.mintIdToken({}, { header: { [name]: carried } }), `header carries ${name}`);
  });

  it('refuses a crit header (and with it b64=false)', async () => {
    await expectRejected(await fake.mintIdToken({}, { header: { crit: ['exp'], exp: 1 } }), 'header carries crit');
  });

  it('refuses a token without kid', async () => {
    await expectRejected(await fake.mintIdToken({}, { header: { kid: undefined } }), 'header has no kid');
  });

  it.each([
    ['an empty string', ''],
    ['two segments', 'eyJhbGciOiJSUzI1NiJ9.e30'],
    ['a JWE (five segments)', 'a.b.c.d.e'],
    ['a header that is not JSON', `${Buffer.from('not json').toString('base64url')}.e30.c2ln`],
    ['a header that is a JSON array', `${encode(['RS256'])}.e30.c2ln`],
    ['an oversized token', `${encode({ alg: 'RS256', kid: 'k' })}.${'a'.repeat(20_000)}.c2ln`],
  ])('refuses a malformed token: %s', async (_, token) => {
    await expectRejected(token, /not a compact JWS|not JSON|not a JSON object/);
  });
});

describe('verifyGitHubIdToken: issuer', () => {
  it.each([
    ['a trailing slash', (issuer: string) => `${issuer}/`],
    ['https instead of http', (issuer: string) => issuer.replace('http:', 'https:')],
    ['another host', (issuer: string) => issuer.replace('127.0.0.1', 'localhost')],
    ['a path', (issuer: string) => `${issuer}/evil`],
    ['upper case', (issuer: string) => issuer.toUpperCase()],
    ['GitHub’s public issuer', () => 'https://token.actions.githubusercontent.com'],
  ])('refuses an iss with %s, though signed by the issuer’s key', async (_, lookAlike) => {
    const iss = lookAlike(fake.issuer);
    await expectRejected(await fake.mintIdToken({ iss }), `iss ${JSON.stringify(iss)} is not the configured issuer`);
  });

  it('never fetches keys from the issuer a token names', async () => {
    const attacker = await startFakeGitHubIssuer({ audience: AUDIENCE });
    try {
      await expectRejected(await attacker.mintIdToken(), /is not in the issuer's JWKS/);
      await expectRejected(await attacker.mintIdToken({ iss: fake.issuer }), /is not in the issuer's JWKS/);
      expect(attacker.jwksRequests).toBe(0);
    } finally {
      await attacker.close();
    }
  });
});

describe('verifyGitHubIdToken: audience', () => {
  it.each([
    ['a trailing slash', `${AUDIENCE}/`],
    ['another case', AUDIENCE.toUpperCase()],
    ['a longer host', `${AUDIENCE}.evil.example`],
    ['GitHub’s default audience', 'https://github.com/octo-org'],
    ['an array shared with another audience', [AUDIENCE, 'https://other.example']],
    ['an array with our audience second', ['https://other.example', AUDIENCE]],
    ['an array listing us twice', [AUDIENCE, AUDIENCE]],
    ['an empty array', []],
  ])('refuses an aud with %s', async (_, aud) => {
    await expectRejected(await fake.mintIdToken({ aud }), `aud ${JSON.stringify(aud)} is not exactly the configured audience`);
  });

  it.each([
    ['missing', { omit: ['aud'] }, {}, 'claim aud is required'],
    ['a number', {}, { aud: 42 }, 'claim aud must be a string or an array of strings'],
  ])('refuses an aud that is %s', async (_, options, claims, reason) => {
    await expectRejected(await fake.mintIdToken(claims, options), reason);
  });
});
