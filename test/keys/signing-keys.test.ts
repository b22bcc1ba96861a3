import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { keyServiceOf, startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, form, send } from '../support/api.js';

const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;
const headerOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());

describe('signing keys shared by instances', () => {
  let first: TestServer;
  let second: TestServer;
  beforeAll(async () => {
    first = await startTestServer();
    second = await startTestServer({ shareWith: first });
  });
  afterAll(async () => {
    await second.stop();
    await first.stop();
  });

  it('signs with one key on every instance and verifies across them', async () => {
    const fromFirst = await adminToken(first);
    const fromSecond = await adminToken(second);
    expect(kidOf(fromFirst)).toBe(kidOf(fromSecond));
    const reply = await send(second, '/api/v1/token/introspect', bearer(fromSecond, form({ token: fromFirst })));
    expect(reply.body.active).toBe(true);
  });

  it('rotates: the new key signs, the old key stays published and its tokens stay valid, other instances pick it up', async () => {
    const before = await adminToken(first);
    const { kid, retired } = await keyServiceOf(first).rotate(OPERATOR_CALLER, 'RS256');
    expect(retired).toEqual([kidOf(before)]);
    await first.deps.keys.refresh();
    const after = await adminToken(first);
    expect(kidOf(after)).toBe(kid);
    // The second instance has not refreshed: the unknown kid makes it reload once.
    const introspection = await send(second, '/api/v1/token/introspect', bearer(before, form({ token: after })));
    expect(introspection.body.active).toBe(true);
    const jwks = await send(second, '/.well-known/jwks.json');
    expect(jwks.body.keys.map((key: { kid: string }) => key.kid).sort()).toEqual([kid, kidOf(before)].sort());
    expect((await send(first, '/api/v1/agents', bearer(before))).status).toBe(200);
  });

  it('drops a retired key from the JWKS once its last token has expired, and stops accepting what it signed', async () => {
    const signedByRetiring = await adminToken(first);
    expect((await send(first, '/api/v1/agents', bearer(signedByRetiring))).status).toBe(200); // its signature is now cached
    await keyServiceOf(first).rotate(OPERATOR_CALLER, 'RS256');
    await first.deps.keys.refresh();
    expect((await send(first, '/api/v1/agents', bearer(signedByRetiring))).status).toBe(200); // retired, still published
    const published = (await send(first, '/.well-known/jwks.json')).body.keys.length;
    expect(published).toBe(3);
    await first.deps.knex('signing_keys').whereNotNull('retired_at').update({ retired_at: first.deps.knex.raw(`now() - interval '2 days'`) });
    await first.deps.keys.refresh();
    expect((await send(first, '/.well-known/jwks.json')).body.keys).toHaveLength(1);
    // Withdrawn: not even the verified-signature cache keeps its tokens alive.
    expect((await send(first, '/api/v1/agents', bearer(signedByRetiring))).status).toBe(401);
  });
});

describe.each([
  ['ES256', 'EC'],
  ['EdDSA', 'OKP'],
])('SIGNING_ALG=%s', (alg, kty) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { SIGNING_ALG: alg } });
  });
  afterAll(() => server.stop());

  it('signs tokens that verify and publishes a matching key', async () => {
    const token = await adminToken(server);
    expect(headerOf(token)).toMatchObject({ alg, typ: 'at+jwt' });
    const jwks = await send(server, '/.well-known/jwks.json');
    expect(jwks.body.keys).toEqual([expect.objectContaining({ kty, alg, kid: kidOf(token) })]);
    expect((await send(server, '/api/v1/token/introspect', bearer(token, form({ token })))).body.active).toBe(true);
  });
});
