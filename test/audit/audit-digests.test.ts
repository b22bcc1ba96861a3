/**
 * Signed digests of the audit chain (issue 13, finding 10): whoever can write the database
 * can delete the newest events and recompute the chain, and /audit/verify said valid. A
 * digest kept outside the database (the server logs each one) shows it.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { decodeJwt, decodeProtectedHeader, SignJWT, generateKeyPair } from 'jose';
import pino from 'pino';
import { hashAuditEvent } from '../../server/src/audit/audit-chain.js';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { loadKeyRing } from '../../server/src/keys/key-ring.js';
import { SigningKeyService } from '../../server/src/keys/signing-key-service.js';
import { emitDigest, pruneExpiredRows } from '../../server/src/maintenance.js';
import { adminToken, bearer, createAgent, form, send } from '../support/api.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let admin: string;
beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

/** Emits the next digest on `on` as the maintenance job does, and returns the JWS it logged. */
async function emit(on: TestServer = server): Promise<string> {
  const lines: string[] = [];
  const logger = pino({}, { write: (line: string) => void lines.push(line) });
  const { keys, clock, knex } = on.deps;
  await emitDigest(knex, logger, clock, { sign: (typ, payload) => keys.signDocument(typ, payload), intervalSeconds: 1 });
  const logged = lines.map((line) => JSON.parse(line)).find((line) => line.msg === 'audit digest');
  if (!logged) throw new Error(`no digest emitted: ${lines.join('')}`);
  return logged.digest;
}

async function verify(digest?: string) {
  const query = digest === undefined ? '' : `?${new URLSearchParams({ digest })}`;
  return send(server, `/api/v1/audit/verify${query}`, bearer(admin));
}

const headSeq = async () => Number((await server.deps.knex('audit_events').max({ seq: 'chain_seq' }))[0].seq);

/** What someone who can write the database does: delete the newest events, and the stored digests with them. */
async function truncate(events: number, { andDigests = false } = {}): Promise<void> {
  const knex = server.deps.knex;
  const newest = await knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq', 'desc').limit(events).pluck('id');
  await knex('audit_events').whereIn('id', newest).delete();
  if (andDigests) await knex('audit_digests').delete();
}

describe('a digest', () => {
  it('is a compact JWS of its own type, signed by a published key, that can never pass for an access token', async () => {
    await createAgent(server, admin);
    const jws = await emit();
    const header = decodeProtectedHeader(jws);
    expect(header).toEqual({ alg: 'RS256', typ: 'sentryagent-audit-digest', kid: server.deps.keys.activeKid });
    const jwks = (await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((key) => key.kid)).toContain(header.kid);
    const payload = decodeJwt(jws);
    expect(payload).toEqual({
      digest_seq: 1,
      first_seq: 1,
      last_seq: await headSeq(),
      count: await headSeq(),
      head_hash: expect.stringMatching(/^[0-9a-f]{64}$/),
      previous_digest_hash: '0'.repeat(64),
      iat: expect.any(Number),
    });
    expect((await send(server, '/api/v1/agents', bearer(jws))).status).toBe(401);
    const introspection = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token: jws })));
    expect(introspection.body).toEqual({ active: false });
    expect((await verify(jws)).body).toEqual({ valid: true, checked: await headSeq(), digestsChecked: 2 });
  });

  it('follows the previous digest: first_seq after its last_seq, and the hash of its JWS', async () => {
    const previous = await emit();
    await createAgent(server, admin);
    const next = decodeJwt(await emit());
    expect(next).toMatchObject({
      first_seq: (decodeJwt(previous).last_seq as number) + 1,
      last_seq: await headSeq(),
      previous_digest_hash: crypto.createHash('sha256').update(previous).digest('hex'),
    });
    expect((await verify()).body).toMatchObject({ valid: true });
  });

  it('is emitted by the server itself every AUDIT_DIGEST_INTERVAL_SECONDS, to the log and the database', async () => {
    const own = await startTestServer({ env: { AUDIT_DIGEST_INTERVAL_SECONDS: '1' } });
    try {
      const deadline = Date.now() + 10_000;
      while (!own.logs.some((line) => line.includes('"msg":"audit digest"')) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
      const line = JSON.parse(own.logs.find((candidate) => candidate.includes('"msg":"audit digest"')) ?? '{}');
      expect(line).toMatchObject({ level: 30, digest: expect.any(String), digestSeq: 1 });
      expect(await own.deps.knex('audit_digests').pluck('jws')).toContain(line.digest);
    } finally {
      await own.stop();
    }
  });
});

describe('tampering', () => {
  it('shows the newest events deleted (truncation), from the stored digest and from one kept outside', async () => {
    await createAgent(server, admin);
    const kept = await emit();
    const head = await headSeq();
    await truncate(5);
    expect((await verify()).body).toMatchObject({ valid: false, firstInvalidSeq: head - 4 });
    // No new digest blesses the truncation.
    await expect(emit()).rejects.toThrow('no digest emitted');
    // Deleting the stored digests too makes the database consistent again; the copy kept outside still tells.
    await truncate(0, { andDigests: true });
    expect((await verify()).body).toMatchObject({ valid: true });
    expect((await verify(kept)).body).toMatchObject({ valid: false, firstInvalidSeq: head - 4 });
  });

  it('shows an event rewritten and the chain recomputed after it', async () => {
    const fresh = await startTestServer();
    try {
      const token = await adminToken(fresh);
      await createAgent(fresh, token);
      const { knex } = fresh.deps;
      const kept = await emit(fresh);
      // Rewrite event 2 and recompute every hash from there, as an attacker with the database can.
      const rows = await knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq');
      let prevHash = rows[0].hash;
      for (const row of rows.slice(1)) {
        const data = row.chain_seq === 2 ? { forged: true } : row.data;
        const hash = hashAuditEvent({ ...row, data }, Number(row.chain_seq), prevHash);
        await knex('audit_events').where({ id: row.id }).update({ data: JSON.stringify(data), prev_hash: prevHash, hash });
        prevHash = hash;
      }
      await knex('audit_digests').delete();
      const verifyWith = (query: string) => send(fresh, `/api/v1/audit/verify${query}`, bearer(token));
      expect((await verifyWith('')).body).toMatchObject({ valid: true });
      expect((await verifyWith(`?${new URLSearchParams({ digest: kept })}`)).body).toMatchObject({ valid: false, firstInvalidSeq: 1 });
    } finally {
      await fresh.stop();
    }
  });

  it('shows a stored digest replaced, and a digest chain with a gap', async () => {
    const fresh = await startTestServer();
    try {
      const token = await adminToken(fresh);
      const { keys, clock, knex } = fresh.deps;
      const logger = pino({ level: 'silent' });
      const options = { sign: keys.signDocument.bind(keys), intervalSeconds: 1 };
      await emitDigest(knex, logger, clock, options);
      await createAgent(fresh, token);
      await emitDigest(knex, logger, clock, options);
      await createAgent(fresh, token);
      await emitDigest(knex, logger, clock, options);
      const verifyIt = async () => (await send(fresh, '/api/v1/audit/verify', bearer(token))).body;
      expect(await verifyIt()).toMatchObject({ valid: true, digestsChecked: 3 });
      const second = await knex('audit_digests').where({ seq: 2 }).first();
      await knex('audit_digests').where({ seq: 2 }).delete();
      expect(await verifyIt()).toMatchObject({ valid: false, firstInvalidSeq: second.last_seq + 1 });
      // Its signature altered (in its first character: the last one carries bits base64url ignores).
      const [header, payload, signature] = second.jws.split('.');
      const altered = `${header}.${payload}.${signature[0] === 'A' ? 'B' : 'A'}${signature.slice(1)}`;
      await knex('audit_digests').insert({ ...second, jws: altered });
      expect(await verifyIt()).toMatchObject({ valid: false, firstInvalidSeq: second.first_seq });
    } finally {
      await fresh.stop();
    }
  });
});

describe('verification', () => {
  it('refuses as a digest an access token, a digest signed by another key, and junk: 400 VALIDATION_ERROR', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(decodeJwt(await emit()))
      .setProtectedHeader({ alg: 'RS256', typ: 'sentryagent-audit-digest', kid: server.deps.keys.activeKid })
      .sign(privateKey);
    for (const digest of [admin, forged, 'junk', `${admin}x`]) {
      const reply = await verify(digest);
      expect({ status: reply.status, code: reply.body.code }).toEqual({ status: 400, code: 'VALIDATION_ERROR' });
    }
  });

  it('checks old digests with retired keys, long after they left the JWKS', async () => {
    const fresh = await startTestServer();
    try {
      const { keys, clock, knex, config } = fresh.deps;
      const old = await emit(fresh);
      const { retired } = await new SigningKeyService({ knex, clock, keyRing: () => loadKeyRing(fresh.config).ring }).rotate(OPERATOR_CALLER, config.signingAlg);
      await knex('signing_keys').whereIn('kid', retired).update({ retired_at: new Date(Date.now() - 365 * 86_400_000) });
      await keys.refresh();
      // Maintenance erases its private part (no token it signed can be live) and keeps the public one.
      await pruneExpiredRows(knex, clock, config.tokenTtlSeconds);
      expect(await knex('signing_keys').whereIn('kid', retired).select('private_jwk', 'sealed_private_key', 'public_jwk')).toEqual([
        { private_jwk: null, sealed_private_key: null, public_jwk: expect.objectContaining({ kid: retired[0] }) },
      ]);
      const jwks = (await (await fetch(`${fresh.url}/.well-known/jwks.json`)).json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((key) => key.kid)).not.toContain(decodeProtectedHeader(old).kid);
      const token = await adminToken(fresh); // the first was signed by the key now withdrawn
      const reply = await send(fresh, `/api/v1/audit/verify?${new URLSearchParams({ digest: old })}`, bearer(token));
      expect(reply.body).toMatchObject({ valid: true });
      // A public key written under the old kid cannot vouch for anything: the kid is its thumbprint.
      const { publicKey } = await generateKeyPair('RS256', { extractable: true });
      const { exportJWK } = await import('jose');
      await knex('signing_keys').whereIn('kid', retired).update({ public_jwk: { ...(await exportJWK(publicKey)), kid: retired[0] } });
      expect((await send(fresh, `/api/v1/audit/verify?${new URLSearchParams({ digest: old })}`, bearer(token))).status).toBe(400);
    } finally {
      await fresh.stop();
    }
  });

  it('trusts nothing a revoked (compromised) key signed', async () => {
    const fresh = await startTestServer();
    try {
      const { keys, clock, knex, config } = fresh.deps;
      const digest = await emit(fresh);
      const service = new SigningKeyService({ knex, clock, keyRing: () => loadKeyRing(fresh.config).ring });
      await service.revoke(OPERATOR_CALLER, decodeProtectedHeader(digest).kid as string, config.signingAlg);
      await keys.refresh();
      const token = await adminToken(fresh);
      const reply = await send(fresh, `/api/v1/audit/verify?${new URLSearchParams({ digest })}`, bearer(token));
      expect({ status: reply.status, code: reply.body.code }).toEqual({ status: 400, code: 'VALIDATION_ERROR' });
      // The stored copy fails the same way: the trail is no longer vouched for.
      expect((await send(fresh, '/api/v1/audit/verify', bearer(token))).body).toMatchObject({ valid: false, firstInvalidSeq: 1 });
    } finally {
      await fresh.stop();
    }
  });

  it('is the CLI\'s too: audit verify --digest <file> takes the JWS or the logged line, and exits 1 on a truncated chain', async () => {
    const fresh = await startTestServer();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'digest-'));
    try {
      const token = await adminToken(fresh);
      await createAgent(fresh, token);
      const { keys, clock, knex } = fresh.deps;
      const lines: string[] = [];
      await emitDigest(knex, pino({}, { write: (line: string) => void lines.push(line) }), clock, { sign: keys.signDocument.bind(keys), intervalSeconds: 1 });
      fs.writeFileSync(path.join(dir, 'line.json'), lines[0]);
      fs.writeFileSync(path.join(dir, 'digest.jws'), `${JSON.parse(lines[0]).digest}\n`);
      fs.writeFileSync(path.join(dir, 'junk'), 'junk');
      const cli = async (...argv: string[]) => {
        const { output, printed } = bufferedOutput(argv.includes('--json'));
        const exitCode = await runCommandOn(argv.filter((arg) => arg !== '--json'), fresh.config, fresh.database, output, { isSchemaCurrent: true, clock });
        return { exitCode, ...printed() };
      };
      expect(await cli('audit', 'verify', '--digest', path.join(dir, 'line.json'))).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^audit chain intact: \d+ events and the digest given/) });
      expect((await cli('audit', 'verify', '--digest', path.join(dir, 'digest.jws'))).exitCode).toBe(0);
      expect((await cli('audit', 'verify', '--digest', path.join(dir, 'junk'))).exitCode).toBe(2);
      expect((await cli('audit', 'verify', '--digest', path.join(dir, 'missing'))).exitCode).toBe(2);
      const newest = await knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq', 'desc').first('id', 'chain_seq');
      await knex('audit_events').where({ id: newest.id }).delete();
      await knex('audit_digests').delete();
      const broken = await cli('audit', 'verify', '--digest', path.join(dir, 'line.json'), '--json');
      expect(broken.exitCode).toBe(1);
      expect(JSON.parse(broken.stdout)).toMatchObject({ valid: false, firstInvalidSeq: Number(newest.chain_seq) });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await fresh.stop();
    }
  });
});
