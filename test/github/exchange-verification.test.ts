/**
 * POST /oidc/token refuses every ID token that fails verification with one generic 400
 * invalid_grant. A token whose signature verified is audited with the precise reason; one
 * refused before that is counted by reason only (a metric, and one audit row per reason
 * and minute: unverified-refusals.test.ts). Each case is sent for its own unknown
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

/**
 * A token refused before its signature was verified: the same answer, but no audit row
 * about the agent it named (anyone could have sent it); counted by reason instead.
 */
async function expectUnverified(token: string, reason: string) {
  const probe = randomUUID();
  const before = await unverifiedRefusals(reason);
  const reply = await exchange(h.server, token, probe);
  expect({ status: reply.status, body: reply.body }).toEqual({ status: 400, body: REFUSAL.invalid });
  expect(reply.headers.get('cache-control')).toBe('no-store');
  expect(await auditEvents(h, 'oidc.exchange.refused', probe)).toEqual([]);
  expect(await unverifiedRefusals(reason)).toBe(before + 1);
}

async function unverifiedRefusals(reason: string): Promise<number> {
  const text = await (await fetch(`${h.server.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith(`sentryagent_oidc_unverified_refusals_total{endpoint="exchange",reason="${reason}"}`));
  return line ? Number(line.split(' ').pop()) : 0;
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
    await expectUnverified(await mint({}, { alg }), 'alg');
  });

  it('refuses HS256 keyed with the issuer public key as PEM', async () => {
    const token = await mint({}, { alg: 'HS256', key: createSecretKey(Buffer.from(issuerPublicPem)) });
    await expectUnverified(token, 'alg');
  });

  it('refuses HS256 keyed with the issuer public key as JWK JSON', async () => {
    const token = await mint({}, { alg: 'HS256', key: createSecretKey(Buffer.from(JSON.stringify(issuerPublicJwk))) });
    await expectUnverified(token, 'alg');
  });

  it.each(['RS384', 'PS256', 'ES256'])('refuses any algorithm but RS256: %s', async (alg) => {
    const { privateKey } = await generateKeyPair(alg);
    await expectUnverified(await mint({}, { alg, key: privateKey }), 'alg');
  });

  it('refuses a foreign key signing under the real kid', async () => {
    await expectUnverified(await mint({}, { key: foreign.privateKey }), 'signature');
  });

  it('refuses a foreign key signing under an unknown kid', async () => {
    await expectUnverified(await mint({}, { key: foreign.privateKey, kid: 'foreign' }), 'unknown_kid');
  });

  it('refuses a token with a valid signature whose payload was altered', async () => {
    const [header, , signature] = (await mint()).split('.');
    const tampered = (await mint({ repository: 'octo-org/other-repo' })).split('.')[1];
    await expectUnverified(`${header}.${tampered}.${signature}`, 'signature');
  });

  it.each([
    ['jku', () => ({ jku: `${attacker.issuer}/.well-known/jwks` })],
    ['x5u', () => ({ x5u: `${attacker.issuer}/cert.pem` })],
    ['jwk', () => ({ jwk: foreign.publicJwk })],
    ['x5c', () => ({ x5c: ['MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA'] })],
  ])('refuses a %s header even when the real key signed', async (name, header) => {
    await expectUnverified(await mint({}, { header: header() }), 'header');
  });

  it('refuses a jwk header carrying the key that signed it', async () => {
    const token = await mint({}, { key: foreign.privateKey, kid: 'foreign', header: { jwk: foreign.publicJwk } });
    await expectUnverified(token, 'header');
  });

  it('refuses a crit header', async () => {
    await expectUnverified(await mint({}, { header: { crit: ['b64'], b64: false } }), 'header');
  });

  it('refuses a token without a kid', async () => {
    await expectUnverified(await mint({}, { header: { kid: undefined } }), 'header');
  });

  it('never fetches keys from the issuer a token names, nor from a key URL it carries', async () => {
    await expectUnverified(await attacker.mintIdToken({ aud: AUDIENCE }), 'unknown_kid');
    await expectUnverified(await mint({ iss: attacker.issuer }, { header: { jku: `${attacker.issuer}/.well-known/jwks` } }), 'header');
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
    ['not-a-jwt', 'malformed'],
    ['a.b', 'malformed'],
    ['a.b.c.d', 'malformed'],
    ['..', 'malformed'],
    ['bm90IGpzb24.e30.', 'malformed'],
    ['e30.e30.', 'alg'],
  ] as const)('refuses a token that is not a signed compact JWS: %j', async (token, reason) => {
    await expectUnverified(token, reason);
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
