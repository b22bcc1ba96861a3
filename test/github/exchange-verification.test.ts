/**
 * POST /oidc/token refuses every ID token that fails verification with one generic 400
 * invalid_grant, and audits the precise reason. Each case is sent for its own unknown
 * agentId, so the audit event that follows can be told apart from the others.
 */
import { createSecretKey, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { exportJWK, exportSPKI, generateKeyPair, importJWK, type CryptoKey, type JWK } from 'jose';
import { startFakeGitHubIssuer, type FakeGitHubIssuer, type MintOptions } from '../support/fake-github-issuer.js';
import { AUDIENCE, REFUSAL, agentWithPolicy, auditEvents, exchange, mintIdToken, nowSeconds, startHarness, type Harness } from './exchange-harness.js';

let h: Harness;
let attacker: FakeGitHubIssuer;
let agentId: string;
let foreign: { privateKey: CryptoKey; publicJwk: JWK };
let issuerPublicPem: string;
let issuerPublicJwk: JWK;

beforeAll(async () => {
  h = await startHarness();
  attacker = await startFakeGitHubIssuer({ audience: AUDIENCE });
  ({ agentId } = await agentWithPolicy(h));
  const pair = await generateKeyPair('RS256', { extractable: true });
  foreign = { privateKey: pair.privateKey, publicJwk: { ...(await exportJWK(pair.publicKey)), kid: 'foreign' } };
  const jwks = (await (await fetch(`${h.github.issuer}/.well-known/jwks`)).json()) as { keys: JWK[] };
  issuerPublicJwk = jwks.keys[0];
  issuerPublicPem = await exportSPKI((await importJWK(issuerPublicJwk, 'RS256')) as CryptoKey);
});
afterAll(async () => {
  await attacker.close();
  await h.stop();
});

/** Sends the token for a fresh unknown agent and returns the reply and the one refusal it audited. */
async function refusalOf(token: string) {
  const probe = randomUUID();
  const reply = await exchange(h.server, token, probe);
  const [event, ...more] = await auditEvents(h, 'oidc.exchange.refused', probe);
  expect(more).toEqual([]);
  return { reply, event };
}

async function expectRejected(token: string, reason: string | RegExp) {
  const { reply, event } = await refusalOf(token);
  expect({ status: reply.status, body: reply.body }).toEqual({ status: 400, body: REFUSAL.invalid });
  expect(reply.headers.get('cache-control')).toBe('no-store');
  expect(event).toMatchObject({ actor: 'github:unverified', data: { reason: typeof reason === 'string' ? reason : expect.stringMatching(reason) } });
}

async function expectAccepted(token: string) {
  const reply = await exchange(h.server, token, agentId);
  expect({ status: reply.status, error: reply.body.error_description }).toEqual({ status: 200, error: undefined });
}

const mint = (overrides: Record<string, unknown> = {}, options: MintOptions = {}) => mintIdToken(h.github, 'push-main', overrides, options);

describe('signature and header', () => {
  it('accepts a well-formed token of the configured issuer (the control for every case below)', async () => {
    await expectAccepted(await mint());
  });

  it.each(['none', 'None', 'NONE'])('refuses an unsigned token with alg %s', async (alg) => {
    await expectRejected(await mint({}, { alg }), `alg ${JSON.stringify(alg)} is not RS256`);
  });

  it('refuses HS256 keyed with the issuer public key as PEM', async () => {
    const token = await mint({}, { alg: 'HS256', key: createSecretKey(Buffer.from(issuerPublicPem)) });
    await expectRejected(token, 'alg "HS256" is not RS256');
  });

  it('refuses HS256 keyed with the issuer public key as JWK JSON', async () => {
    const token = await mint({}, { alg: 'HS256', key: createSecretKey(Buffer.from(JSON.stringify(issuerPublicJwk))) });
    await expectRejected(token, 'alg "HS256" is not RS256');
  });

  it.each(['RS384', 'PS256', 'ES256'])('refuses any algorithm but RS256: %s', async (alg) => {
    const { privateKey } = await generateKeyPair(alg);
    await expectRejected(await mint({}, { alg, key: privateKey }), `alg "${alg}" is not RS256`);
  });

  it('refuses a foreign key signing under the real kid', async () => {
    await expectRejected(await mint({}, { key: foreign.privateKey }), /^signature verification failed$/);
  });

  it('refuses a foreign key signing under an unknown kid', async () => {
    await expectRejected(await mint({}, { key: foreign.privateKey, kid: 'foreign' }), `kid "foreign" is not in the issuer's JWKS`);
  });

  it('refuses a token with a valid signature whose payload was altered', async () => {
    const [header, , signature] = (await mint()).split('.');
    const tampered = (await mint({ repository: 'octo-org/other-repo' })).split('.')[1];
    await expectRejected(`${header}.${tampered}.${signature}`, /^signature verification failed$/);
  });

  it.each([
    ['jku', () => ({ jku: `${attacker.issuer}/.well-known/jwks` })],
    ['x5u', () => ({ x5u: `${attacker.issuer}/cert.pem` })],
    ['jwk', () => ({ jwk: foreign.publicJwk })],
    ['x5c', () => ({ x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] })],
  ])('refuses a %s header even when the real key signed', async (name, header) => {
    await expectRejected(await mint({}, { header: header() }), `header carries ${name}`);
  });

  it('refuses a jwk header carrying the key that signed it', async () => {
    const token = await mint({}, { key: foreign.privateKey, kid: 'foreign', header: { jwk: foreign.publicJwk } });
    await expectRejected(token, 'header carries jwk');
  });

  it('refuses a crit header', async () => {
    await expectRejected(await mint({}, { header: { crit: ['b64'], b64: false } }), 'header carries crit');
  });

  it('refuses a token without a kid', async () => {
    await expectRejected(await mint({}, { header: { kid: undefined } }), 'header has no kid');
  });

  it('never fetches keys from the issuer a token names, nor from a key URL it carries', async () => {
    await expectRejected(await attacker.mintIdToken({ aud: AUDIENCE }), /is not in the issuer's JWKS$/);
    await expectRejected(await mint({ iss: attacker.issuer }, { header: { jku: `${attacker.issuer}/.well-known/jwks` } }), 'header carries jku');
    expect(attacker.jwksRequests).toBe(0);
  });

  it('answers invalid_request for an empty token', async () => {
    const reply = await exchange(h.server, '', agentId);
    expect({ status: reply.status, body: reply.body }).toEqual({
      status: 400,
      body: { error: 'invalid_request', error_description: "The 'token' parameter is missing or malformed." },
    });
  });

  it.each([
    ['not-a-jwt', 'not a compact JWS'],
    ['a.b', 'not a compact JWS'],
    ['a.b.c.d', 'not a compact JWS'],
    ['..', 'not a compact JWS'],
    ['bm90IGpzb24.e30.', 'header is not JSON'],
    ['e30.e30.', 'alg undefined is not RS256'],
  ])('refuses a token that is not a signed compact JWS: %j', async (token, reason) => {
    await expectRejected(token, reason);
  });
});

describe('issuer', () => {
  const lookAlikes = (issuer: string) => [
    `${issuer}/`,
    issuer.toUpperCase(),
    issuer.replace('127.0.0.1', 'localhost'),
    issuer.replace('http://', 'https://'),
    `${issuer}/evil`,
    `${issuer}.evil.test`,
    ` ${issuer}`,
    'https://token.actions.githubusercontent.com',
  ];

  it('refuses every look-alike of the configured issuer, signed by its own key', async () => {
    for (const iss of lookAlikes(h.github.issuer)) {
      await expectRejected(await mint({ iss }), `iss ${JSON.stringify(iss)} is not the configured issuer`);
    }
  });

  it('refuses a token without iss', async () => {
    await expectRejected(await mint({}, { omit: ['iss'] }), 'claim iss is required');
  });
});

describe('audience', () => {
  it.each([
    [`${AUDIENCE}/`],
    [AUDIENCE.toUpperCase()],
    ['https://idp.test/git'],
    [`${AUDIENCE}.evil.test`],
    ['https://idp.test'],
    ['https://github.com/octo-org'],
    [[AUDIENCE, 'https://other.example']],
    [['https://other.example', AUDIENCE]],
    [[AUDIENCE, AUDIENCE]],
    [[]],
  ])('refuses aud %j', async (aud) => {
    await expectRejected(await mint({ aud }), `aud ${JSON.stringify(aud)} is not exactly the configured audience`);
  });

  it('refuses a token without aud', async () => {
    await expectRejected(await mint({}, { omit: ['aud'] }), 'claim aud is required');
  });

  it('accepts aud as a one-element list holding exactly the audience', async () => {
    await expectAccepted(await mint({ aud: [AUDIENCE] }));
  });
});

describe('time claims', () => {
  const times = (iat: number, nbf: number, exp: number) => ({ iat, nbf, exp });

  it('refuses an expired token, beyond the leeway', async () => {
    const now = nowSeconds();
    await expectRejected(await mint(times(now - 400, now - 405, now - 90)), /^expired at /);
  });

  it('accepts a token that expired within the leeway (clock skew)', async () => {
    const now = nowSeconds();
    await expectAccepted(await mint(times(now - 300, now - 305, now - 20)));
  });

  it('refuses a token not yet valid, beyond the leeway', async () => {
    const now = nowSeconds();
    await expectRejected(await mint(times(now, now + 120, now + 400)), /^not valid before /);
  });

  it('accepts a token valid a few seconds from now (clock skew)', async () => {
    const now = nowSeconds();
    await expectAccepted(await mint(times(now + 20, now + 20, now + 320)));
  });

  it("accepts GitHub's back-dated nbf, fifteen minutes before iat", async () => {
    const now = nowSeconds();
    await expectAccepted(await mint(times(now, now - 900, now + 300)));
  });

  it('refuses a token issued in the future, beyond the leeway', async () => {
    const now = nowSeconds();
    await expectRejected(await mint(times(now + 120, now - 5, now + 400)), /^issued in the future at /);
  });

  it('refuses a token that expires when it is issued', async () => {
    const now = nowSeconds();
    await expectRejected(await mint(times(now, now - 5, now)), `exp ${now} is not after iat ${now}`);
  });

  it.each(['exp', 'nbf', 'iat'])('refuses a token without %s', async (claim) => {
    await expectRejected(await mint({}, { omit: [claim] }), `claim ${claim} is required`);
  });

  it('refuses a time claim that is not a NumericDate', async () => {
    await expectRejected(await mint({ exp: String(nowSeconds() + 300) }), 'claim exp must be a NumericDate');
  });
});

describe('jti', () => {
  it('refuses a token without jti with the generic answer, revealing nothing', async () => {
    const { reply, event } = await refusalOf(await mint({}, { omit: ['jti'] }));
    expect(reply.status).toBe(400);
    expect(reply.text).toBe(JSON.stringify(REFUSAL.invalid));
    expect(reply.text).not.toMatch(/jti|claim|required/i);
    expect(event.data.reason).toBe('claim jti is required');
  });

  it('refuses an empty jti', async () => {
    await expectRejected(await mint({ jti: '' }), 'claim jti is empty');
  });
});
