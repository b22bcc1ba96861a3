/**
 * Signing keys at rest (issue 13, finding 8): what the database holds when a key-encryption
 * key is set, the binding of each ciphertext to its kid, a KEK rotation with `keys rewrap`,
 * the upgrade of keys that were stored in clear, and refusals that name the kid and the KEK.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import { loadConfig } from '../../server/src/config.js';
import { kekIdOf, keyRingOf, unsealPrivateKey } from '../../server/src/keys/key-encryption.js';
import { SigningKeyService } from '../../server/src/keys/signing-key-service.js';
import { publicationWindowSeconds } from '../../server/src/keys/signing-keys.js';
import { pruneExpiredRows } from '../../server/src/maintenance.js';
import { openSecret } from '../../server/src/webhooks/webhook-secrets.js';
import { WebhookService } from '../../server/src/webhooks/webhook-service.js';
import { adminToken, bearer, form, send } from '../support/api.js';
import { testClock } from '../support/clock.js';
import { isRealPostgres } from '../support/database.js';
import { keyServiceOf, startTestServer, TEST_KEK, type TestServer } from '../support/test-server.js';

const KEK_A = Buffer.from(TEST_KEK, 'base64');
const kidOf = (token: string) => JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString()).kid as string;
const jwksKids = async (server: TestServer) => ((await send(server, '/.well-known/jwks.json')).body.keys as { kid: string }[]).map((key) => key.kid).sort();
const introspect = async (server: TestServer, caller: string, token: string) =>
  (await send(server, '/api/v1/token/introspect', bearer(caller, form({ token })))).body.active as boolean;

interface KeyRow {
  kid: string;
  private_jwk: crypto.JsonWebKey | null;
  sealed_private_key: Buffer | null;
  kek_id: string | null;
  public_jwk: crypto.JsonWebKey;
  retired_at: Date | null;
  whole: string;
}

/** The rows as anyone with read access to the database sees them. */
/** A server whose database holds two keys: the first one retired, a newer one active. */
async function serverWithTwoKeys(): Promise<TestServer> {
  const server = await startTestServer();
  await keyServiceOf(server).rotate(OPERATOR_CALLER, 'RS256');
  await server.deps.keys.refresh();
  return server;
}

async function keyRows(server: TestServer): Promise<KeyRow[]> {
  const result = await server.deps.knex.raw('select k.*, row_to_json(k)::text as whole from signing_keys k order by created_at');
  return result.rows;
}

/** The CLI, in process, on the server's database, configured with `env` (key-encryption keys). */
async function cli(server: TestServer, env: Record<string, string>, ...argv: string[]) {
  const config = loadConfig({ PUBLIC_URL: 'http://idp.test', ...(server.testDatabase.url ? { DATABASE_URL: server.testDatabase.url } : {}), ...env });
  const { output, printed } = bufferedOutput(true);
  const exitCode = await runCommandOn(argv, config, server.database, output, { isSchemaCurrent: true, clock: server.deps.clock });
  const { stdout, stderr } = printed();
  return { exitCode, stderr, json: () => JSON.parse(stdout) };
}

describe('with KEY_ENCRYPTION_KEY set', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWithTwoKeys();
  });
  afterAll(() => server.stop());

  it('never stores a private key in clear: the rows hold a ciphertext under the KEK, no PEM, no JWK private member', async () => {
    const rows = await keyRows(server);
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      expect(row).toMatchObject({ private_jwk: null, kek_id: kekIdOf(KEK_A) });
      expect(row.whole).not.toMatch(/PRIVATE KEY|"d":|"p":|"q":|"dp":|"dq":|"qi":/);
      expect(Object.keys(row.public_jwk).sort()).toEqual(['alg', 'e', 'kid', 'kty', 'n', 'use']);
      // It is the signing key, encrypted: the KEK opens it, and its private parts appear nowhere in the row.
      const der = unsealPrivateKey(keyRingOf(KEK_A, undefined), row.kid, row.kek_id as string, Buffer.from(row.sealed_private_key as Buffer));
      const privateKey = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      expect(crypto.createPublicKey(privateKey).export({ format: 'jwk' }).n).toBe(row.public_jwk.n);
      expect(Buffer.from(row.sealed_private_key as Buffer).includes(der)).toBe(false);
      const { d, p, q } = privateKey.export({ format: 'jwk' });
      for (const secret of [d, p, q, der.toString('base64'), der.toString('hex')]) expect(row.whole).not.toContain(secret);
    }
    const token = await adminToken(server);
    expect(kidOf(token)).toBe(rows[1].kid);
    expect(await introspect(server, token, token)).toBe(true);
  });

  it('binds each ciphertext to its kid: moved onto another key\'s row, it stops the start and names that kid', async () => {
    const [retired, active] = await keyRows(server);
    const { knex } = server.deps;
    await knex('signing_keys').where({ kid: active.kid }).update({ sealed_private_key: retired.sealed_private_key });
    try {
      await expect(startTestServer({ shareWith: server })).rejects.toThrow(
        `signing key ${active.kid} does not decrypt under key-encryption key ${kekIdOf(KEK_A)}: its stored ciphertext was altered or belongs to another key`,
      );
    } finally {
      await knex('signing_keys').where({ kid: active.kid }).update({ sealed_private_key: active.sealed_private_key });
    }
    const restarted = await startTestServer({ shareWith: server });
    await restarted.stop();
  });
});

describe('rotating the key-encryption key with `keys rewrap`', () => {
  const KEK_B = crypto.randomBytes(32);
  const KEK_C = crypto.randomBytes(32);
  const b64 = (key: Buffer) => key.toString('base64');
  let server: TestServer;
  beforeAll(async () => {
    server = await serverWithTwoKeys();
  });
  afterAll(() => server.stop());

  it('re-encrypts every key under the new KEK, audited once, idempotent; then the server signs with the new KEK alone', async () => {
    const before = await adminToken(server);
    const kids = (await keyRows(server)).map((row) => row.kid);
    // A webhook endpoint's signing secret, sealed under the KEK being rotated out.
    const webhooks = new WebhookService({ knex: server.deps.knex, clock: server.deps.clock, keyRing: server.deps.keyRing, egress: { checkUrl: async () => undefined } });
    const endpoint = await webhooks.create(OPERATOR_CALLER, { url: 'https://siem.example.com/hooks', eventTypes: ['org.suspended'], enabled: false });
    const sealedSecret = async () => (await server.deps.knex('webhook_endpoints').where({ id: endpoint.webhookId }).first('secret', 'secret_kek_id')) as { secret: Buffer; secret_kek_id: string };
    expect((await sealedSecret()).secret_kek_id).toBe(kekIdOf(KEK_A));
    const rotating = { KEY_ENCRYPTION_KEY: b64(KEK_B), KEY_ENCRYPTION_KEY_PREVIOUS: TEST_KEK };
    const first = await cli(server, rotating, 'keys', 'rewrap');
    expect(first).toMatchObject({ exitCode: 0, stderr: '' });
    expect(first.json()).toEqual({ kekId: kekIdOf(KEK_B), rewrapped: kids, webhookEndpointsResealed: 1 });
    expect((await keyRows(server)).map((row) => row.kek_id)).toEqual([kekIdOf(KEK_B), kekIdOf(KEK_B)]);
    const resealed = await sealedSecret();
    expect(resealed.secret_kek_id).toBe(kekIdOf(KEK_B));
    expect(openSecret(keyRingOf(KEK_B, undefined), endpoint.webhookId, { secret: resealed.secret, kekId: resealed.secret_kek_id })).toBe(endpoint.secret);
    const again = await cli(server, rotating, 'keys', 'rewrap');
    expect(again.json()).toEqual({ kekId: kekIdOf(KEK_B), rewrapped: [], webhookEndpointsResealed: 0 });
    const audited = await server.deps.knex('audit_events').where({ type: 'signing_key.rewrapped' }).select('actor', 'data');
    expect(audited).toEqual([{ actor: 'operator', data: { kekId: kekIdOf(KEK_B), rewrapped: kids, from: [kekIdOf(KEK_A)] } }]);

    // The old KEK dropped: a server with the new one alone decrypts the active key and signs.
    const onNewKek = await startTestServer({ shareWith: server, env: { KEY_ENCRYPTION_KEY: b64(KEK_B) } });
    try {
      const signed = await adminToken(onNewKek);
      expect(kidOf(signed)).toBe(kids[1]);
      expect(await introspect(onNewKek, signed, before)).toBe(true);
    } finally {
      await onNewKek.stop();
    }
    // A server still on the old KEK alone is refused: the kid and the KEK id, never key material.
    await expect(startTestServer({ shareWith: server })).rejects.toThrow(
      `signing key ${kids[1]} is encrypted under key-encryption key ${kekIdOf(KEK_B)}, which is neither KEY_ENCRYPTION_KEY (${kekIdOf(KEK_A)}) nor KEY_ENCRYPTION_KEY_PREVIOUS (unset)`,
    );
  });

  it('stops, changing nothing, at a key under a KEK it does not hold (exit 1, naming the kid and the KEK id)', async () => {
    const toC = await cli(server, { KEY_ENCRYPTION_KEY: b64(KEK_C), KEY_ENCRYPTION_KEY_PREVIOUS: b64(KEK_B) }, 'keys', 'rewrap');
    expect(toC.exitCode).toBe(0);
    const rowsBefore = await keyRows(server);
    const refused = await cli(server, { KEY_ENCRYPTION_KEY: b64(KEK_B), KEY_ENCRYPTION_KEY_PREVIOUS: TEST_KEK }, 'keys', 'rewrap');
    expect(refused.exitCode).toBe(1);
    expect(JSON.parse(refused.stderr)).toEqual({
      error: 'signing_key_unavailable',
      message: `signing key ${rowsBefore[0].kid} is encrypted under key-encryption key ${kekIdOf(KEK_C)}, which is neither KEY_ENCRYPTION_KEY (${kekIdOf(KEK_B)}) nor KEY_ENCRYPTION_KEY_PREVIOUS (${kekIdOf(KEK_A)})`,
    });
    expect(await keyRows(server)).toEqual(rowsBefore);
  });

  (isRealPostgres ? it : it.skip)('needs a KEK to wrap under (exit 2) [PostgreSQL only: embedded, a KEK is always generated]', async () => {
    const refused = await cli(server, { KEY_ENCRYPTION_KEY: '' }, 'keys', 'rewrap');
    expect(refused.exitCode).toBe(2);
    expect(JSON.parse(refused.stderr).message).toBe('KEY_ENCRYPTION_KEY is not set: there is no key-encryption key to encrypt the signing keys under.');
  });
});

describe('upgrading a database whose keys were stored in clear', () => {
  const clock = testClock();
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ clock });
  });
  afterAll(() => server.stop());

  it('rotates them out at the first start with a KEK: a new encrypted key signs, the old one is published until its tokens expire, then purged', async () => {
    const signedInClear = await adminToken(server);
    const clearKid = kidOf(signedInClear);
    // The key as the previous release stored it: in clear.
    const [row] = await keyRows(server);
    const der = unsealPrivateKey(keyRingOf(KEK_A, undefined), row.kid, row.kek_id as string, Buffer.from(row.sealed_private_key as Buffer));
    const jwk = crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ format: 'jwk' });
    await server.deps.knex('signing_keys').where({ kid: clearKid }).update({ private_jwk: jwk, sealed_private_key: null, kek_id: null });

    const upgraded = await startTestServer({ shareWith: server, clock });
    try {
      const rows = await keyRows(upgraded);
      expect(rows).toHaveLength(2);
      expect(rows[0]).toMatchObject({ kid: clearKid, private_jwk: null, sealed_private_key: null, kek_id: null, retired_at: expect.any(Date) });
      expect(rows[1]).toMatchObject({ private_jwk: null, kek_id: kekIdOf(KEK_A), retired_at: null });
      expect(rows.map((stored) => stored.whole).join('\n')).not.toContain(jwk.d as string);
      const newKid = rows[1].kid;
      const fresh = await adminToken(upgraded);
      expect(kidOf(fresh)).toBe(newKid);
      // Tokens the clear key signed stay valid until they expire: its public part is still published.
      expect(await introspect(upgraded, fresh, signedInClear)).toBe(true);
      expect(await jwksKids(upgraded)).toEqual([clearKid, newKid].sort());
      const audited = await upgraded.deps.knex('audit_events').where({ type: 'signing_key.rotated' }).select('actor', 'data');
      expect(audited).toEqual([{ actor: 'system', data: { kid: newKid, retired: [clearKid], clear: [clearKid], reason: 'private keys were stored in clear' } }]);
      expect(upgraded.logs.join('')).toContain('signing keys stored in clear were rotated out');

      // Once no token it signed can be live, it leaves the JWKS; its public part stays in
      // the database, to verify the audit digests it signed (audit-digests.test.ts).
      await pruneExpiredRows(upgraded.deps.knex, clock, upgraded.config.tokenTtlSeconds);
      expect((await keyRows(upgraded)).map((stored) => stored.kid)).toEqual([clearKid, newKid]);
      clock.advance((publicationWindowSeconds(upgraded.config.tokenTtlSeconds) + 1) * 1000);
      await pruneExpiredRows(upgraded.deps.knex, clock, upgraded.config.tokenTtlSeconds);
      expect(await keyRows(upgraded)).toMatchObject([
        { kid: clearKid, private_jwk: null, sealed_private_key: null, kek_id: null, public_jwk: expect.objectContaining({ kid: clearKid }) },
        { kid: newKid },
      ]);
      await upgraded.deps.keys.refresh();
      expect(await jwksKids(upgraded)).toEqual([newKid]);
    } finally {
      await upgraded.stop();
    }
  });
});

(isRealPostgres ? describe : describe.skip)('without KEY_ENCRYPTION_KEY on PostgreSQL, outside production [embedded always has a KEK]', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ env: { KEY_ENCRYPTION_KEY: '' } });
  });
  afterAll(() => server.stop());

  it('keeps working with keys in clear, and says so at start', async () => {
    const [row] = await keyRows(server);
    expect(row).toMatchObject({ sealed_private_key: null, kek_id: null, private_jwk: expect.objectContaining({ d: expect.any(String) }) });
    const warnings = server.logs.map((line) => JSON.parse(line)).filter((line) => line.level === 40);
    expect(warnings.map((line) => line.msg)).toContain(
      'KEY_ENCRYPTION_KEY is not set: signing keys are stored in clear in the database; set it (32 random bytes, base64) to encrypt them',
    );
    const token = await adminToken(server);
    expect(await introspect(server, token, token)).toBe(true);
  });

  it('once the keys are encrypted, a server without the KEK refuses to start, naming the kid and the KEK', async () => {
    const withKek = await startTestServer({ shareWith: server });
    const activeKid = (await keyRows(server))[1].kid;
    await withKek.stop();
    await expect(startTestServer({ shareWith: server, env: { KEY_ENCRYPTION_KEY: '' } })).rejects.toThrow(
      `signing key ${activeKid} is encrypted under key-encryption key ${kekIdOf(KEK_A)}, which is neither KEY_ENCRYPTION_KEY (unset) nor KEY_ENCRYPTION_KEY_PREVIOUS (unset)`,
    );
    // Nor does a CLI run without it add a key in clear beside the encrypted ones.
    const rotate = await cli(server, { KEY_ENCRYPTION_KEY: '' }, 'keys', 'rotate');
    expect(rotate.exitCode).toBe(2);
    expect(JSON.parse(rotate.stderr).message).toBe('The signing keys in this database are encrypted: set KEY_ENCRYPTION_KEY, or a new key would be stored in clear.');
    expect(await server.deps.knex('signing_keys').whereNotNull('private_jwk').count({ n: '*' })).toEqual([{ n: 0 }]);
  });
});

describe('the signing-key service', () => {
  it('lets only the operator change keys', async () => {
    const service = new SigningKeyService({ knex: undefined as never, clock: { now: () => 0 }, keyRing: () => keyRingOf(KEK_A, undefined) });
    const agent = agentCaller('00000000-0000-4000-8000-0000000000c1', ['agents:write'], { orgId: '00000000-0000-4000-8000-0000000000f0', isPlatform: true });
    await expect(service.rotate(agent, 'RS256')).rejects.toThrow('Only the operator manages signing keys.');
    await expect(service.rewrap(agent, 'RS256')).rejects.toThrow('Only the operator manages signing keys.');
    await expect(service.revoke(agent, 'kid', 'RS256')).rejects.toThrow('Only the operator manages signing keys.');
  });
});
