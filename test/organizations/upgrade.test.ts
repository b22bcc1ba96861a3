/**
 * The upgrade to organizations: a database migrated up to the migration before them
 * ('20261201090000_signing_keys_at_rest'), holding what a server of that schema wrote (rows
 * inserted in that schema's shape: an agent with a credential hashed as client-secrets.ts
 * does, trust policies for it and a registration policy, a month's quota count, audit
 * events already linked into the chain with the hash of that time and one still pending,
 * a signing key and an access token recorded with it), then migrated to the latest by a
 * server starting on it. Everything old lands in the platform organization and keeps
 * working: the old secret gets a token, the policies are listed, the events are the
 * platform's and the chain verifies, and the token recorded before the migration (its JWT,
 * without org_id, signed with the old key) introspects active with the platform's org_id.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Knex } from 'knex';
import { migrations, type Migration } from '../../server/migrations/index.js';
import { canonicalJson, GENESIS_HASH } from '../../server/src/audit/audit-chain.js';
import { encodeHeader, signJwt } from '../../server/src/keys/jwt.js';
import { hashClientSecret } from '../../server/src/oauth/client-secrets.js';
import { openDatabase, type Database } from '../../server/src/storage/database.js';
import { createTestDatabase, isRealPostgres, temporaryDataDir, type TestDatabase } from '../support/database.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, form, getToken, send } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog } from '../support/load.js';

const BEFORE_ORGANIZATIONS = '20261201090000_signing_keys_at_rest';

const OLD = {
  agentId: '11111111-1111-4111-8111-111111111111',
  credentialId: '22222222-2222-4222-8222-222222222222',
  secret: 'sk_live_old-secret-from-before-organizations-0123456789abcdef',
  policyId: '33333333-3333-4333-8333-333333333333',
  registrationPolicyId: '44444444-4444-4444-8444-444444444444',
  jti: '55555555-5555-4555-8555-555555555555',
  revokedJti: '66666666-6666-4666-8666-666666666666',
  kid: 'old-key-before-organizations',
};

let testDatabase: TestDatabase;
let dataDir: string | undefined;
let server: TestServer;
let oldKey: crypto.KeyObject;
let linkedHashes: { id: string; hash: string }[];

/** A database of its own that can be opened, closed, and opened again by a server (embedded: a DATA_DIR). */
async function upgradableDatabase(): Promise<TestDatabase> {
  if (isRealPostgres) return createTestDatabase();
  dataDir = temporaryDataDir('upgrade-');
  const dir = dataDir;
  return { url: undefined, open: () => openDatabase({ databaseUrl: undefined, dataDir: dir }), drop: async () => fs.rmSync(dir, { recursive: true, force: true }) };
}

async function migrateBeforeOrganizations(database: Database): Promise<void> {
  const upTo = migrations.slice(0, migrations.findIndex((migration) => migration.name === BEFORE_ORGANIZATIONS) + 1);
  const migrationSource: Knex.MigrationSource<Migration> = {
    getMigrations: async () => [...upTo],
    getMigrationName: (migration) => migration.name,
    getMigration: async (migration) => migration,
  };
  await database.knex.migrate.latest({ migrationSource });
}

/** The hash an event was linked with before organizations: no orgId in its content. */
function oldHash(row: { id: string; type: string; agent_id: string | null; actor: string; data: unknown; created_at: Date }, seq: number, prevHash: string): string {
  const content = canonicalJson({ seq, prevHash, id: String(row.id), type: row.type, agentId: row.agent_id, actor: row.actor, data: row.data, createdAt: row.created_at.toISOString() });
  return crypto.createHash('sha256').update(content).digest('hex');
}

async function writeOldData(database: Database): Promise<void> {
  const { knex } = database;
  expect(await knex.schema.hasTable('organizations')).toBe(false);
  await knex('agents').insert({ id: OLD.agentId, name: 'old-deployer', description: 'from before', scopes: ['agents:read', 'tokens:read', 'audit:read'] });
  await knex('credentials').insert({ id: OLD.credentialId, agent_id: OLD.agentId, secret_hash: hashClientSecret(OLD.secret) });
  await knex('trust_policies').insert([
    { id: OLD.policyId, provider: 'github', repository: 'octo-org/old-repo', agent_id: OLD.agentId, branch: 'main' },
    { id: OLD.registrationPolicyId, provider: 'github', repository: 'octo-org/registers', agent_id: null, scopes: ['agents:read'] },
  ]);
  await knex('token_quotas').insert({ agent_id: OLD.agentId, month: new Date().toISOString().slice(0, 7), count: 7 });

  const { privateKey, publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  oldKey = privateKey;
  await knex('signing_keys').insert({
    kid: OLD.kid,
    alg: 'RS256',
    private_jwk: privateKey.export({ format: 'jwk' }),
    public_jwk: { ...publicKey.export({ format: 'jwk' }), kid: OLD.kid, alg: 'RS256', use: 'sig' },
  });
  const now = Date.now();
  await knex('access_tokens').insert([
    { jti: OLD.jti, agent_id: OLD.agentId, credential_id: OLD.credentialId, grant_type: 'client_credentials', scope: 'agents:read', issued_at: new Date(now - 60_000), expires_at: new Date(now + 3_000_000) },
    { jti: OLD.revokedJti, agent_id: OLD.agentId, credential_id: OLD.credentialId, grant_type: 'client_credentials', scope: 'agents:read', issued_at: new Date(now - 60_000), expires_at: new Date(now + 3_000_000), revoked_at: new Date(now - 1000) },
  ]);

  // Three events linked by a server of that time, one it had not linked yet.
  await knex('audit_events').insert([
    { type: 'agent.created', agent_id: OLD.agentId, actor: 'operator', data: JSON.stringify({ name: 'old-deployer', scopes: ['agents:read', 'tokens:read', 'audit:read'] }) },
    { type: 'credential.created', agent_id: OLD.agentId, actor: 'operator', data: JSON.stringify({ credentialId: OLD.credentialId }) },
    { type: 'trust_policy.created', agent_id: OLD.agentId, actor: 'operator', data: JSON.stringify({ policyId: OLD.policyId }) },
  ]);
  const rows = await knex('audit_events').orderBy('id');
  let prevHash = GENESIS_HASH;
  linkedHashes = [];
  for (const [index, row] of rows.entries()) {
    const hash = oldHash(row, index + 1, prevHash);
    await knex('audit_events').where({ id: row.id }).update({ chain_seq: index + 1, prev_hash: prevHash, hash });
    linkedHashes.push({ id: String(row.id), hash });
    prevHash = hash;
  }
  await knex('audit_events').insert({ type: 'token.issued', agent_id: OLD.agentId, actor: `agent:${OLD.agentId}`, data: JSON.stringify({ jti: OLD.jti }) });
}

beforeAll(async () => {
  testDatabase = await upgradableDatabase();
  const database = testDatabase.open();
  try {
    await migrateBeforeOrganizations(database);
    await writeOldData(database);
  } finally {
    await database.close();
  }
  // The server migrates to the latest at its start. No key-encryption key: the old clear key stays the signing key.
  server = await startTestServer({ testDatabase, env: { KEY_ENCRYPTION_KEY: '' } });
});

afterAll(async () => {
  await server?.stop();
  if (!isRealPostgres) await server?.database?.close();
  await testDatabase?.drop();
});

describe('upgrading a database to organizations', () => {
  it('puts every old agent, policy and event in the platform organization', async () => {
    const knex = server.deps.knex;
    const platform = await knex('organizations').where({ is_platform: true }).first();
    expect(platform).toMatchObject({ slug: 'platform', status: 'active' });
    expect(Number((await knex('organizations').count({ n: '*' }))[0].n)).toBe(1);
    expect((await knex('agents').where({ id: OLD.agentId }).first()).org_id).toBe(platform.id);
    expect(await knex('trust_policies').whereIn('id', [OLD.policyId, OLD.registrationPolicyId]).pluck('org_id')).toEqual([platform.id, platform.id]);

    const admin = await adminToken(server);
    expect(claimsOfJwt(admin).org_id).toBe(platform.id);
    const agent = await send(server, `/api/v1/agents/${OLD.agentId}`, bearer(admin));
    expect(agent.status).toBe(200);
    expect(agent.body).toMatchObject({ agentId: OLD.agentId, orgId: platform.id, name: 'old-deployer', status: 'active' });
    const listed = await send(server, '/api/v1/agents?limit=100', bearer(admin));
    expect(listed.body.data.map((row: { agentId: string }) => row.agentId)).toContain(OLD.agentId);

    const policies = await send(server, '/api/v1/oidc/trust-policies?limit=100', bearer(admin));
    expect(policies.status).toBe(200);
    expect(policies.body.data.map((policy: { id: string; orgId: string }) => [policy.id, policy.orgId])).toEqual(
      expect.arrayContaining([
        [OLD.policyId, platform.id],
        [OLD.registrationPolicyId, platform.id],
      ]),
    );
    expect((await send(server, `/api/v1/oidc/trust-policies?agentId=${OLD.agentId}`, bearer(admin))).body.data.map((policy: { id: string }) => policy.id)).toEqual([OLD.policyId]);
  });

  it('the old secret gets a token of the platform organization, counted on top of the month so far', async () => {
    const token = await getToken(server, OLD.agentId, OLD.secret);
    const claims = claimsOfJwt(token);
    const platformId = (await server.deps.knex('organizations').where({ is_platform: true }).first('id')).id;
    expect(claims).toMatchObject({ sub: OLD.agentId, org_id: platformId });
    const admin = await adminToken(server);
    const usage = await send(server, `/api/v1/orgs/${platformId}/usage`, bearer(admin));
    expect(usage.status).toBe(200);
    // 7 grants recorded before the migration, the old agent's new one, and the admin's two.
    expect(usage.body.tokens.granted).toBe(10);
    expect(usage.body.tokens.byAgent).toEqual(expect.arrayContaining([{ agentId: OLD.agentId, name: 'old-deployer', granted: 8 }]));
  });

  it('a token recorded before the migration (no org_id claim) is active, with the platform organization', async () => {
    const platformId = (await server.deps.knex('organizations').where({ is_platform: true }).first('id')).id;
    const fresh = claimsOfJwt(await getToken(server, OLD.agentId, OLD.secret));
    const { org_id: _orgId, ...claimsOfThatTime } = fresh;
    const sign = (jti: string) => signJwt('RS256', encodeHeader('RS256', OLD.kid), oldKey, { ...claimsOfThatTime, scope: 'agents:read', jti, iat: fresh.iat - 60 } as never);
    const oldToken = sign(OLD.jti);
    expect(claimsOfJwt(oldToken).org_id).toBeUndefined();
    const introspected = await send(server, '/api/v1/token/introspect', bearer(await adminToken(server), form({ token: oldToken })));
    expect(introspected.body).toMatchObject({ active: true, sub: OLD.agentId, org_id: platformId, jti: OLD.jti });
    // It still authenticates its agent.
    expect((await send(server, '/api/v1/agents?limit=1', bearer(oldToken))).status).toBe(200);
    // One revoked before the migration stays revoked.
    expect((await send(server, '/api/v1/token/introspect', bearer(await adminToken(server), form({ token: sign(OLD.revokedJti) })))).body).toEqual({ active: false });
  });

  it("shows the old events as the platform's, and the chain verifies with the old hashes kept", async () => {
    const admin = await adminToken(server);
    const platformId = (await server.deps.knex('organizations').where({ is_platform: true }).first('id')).id;
    const events = await readWholeAuditLog(server, admin);
    const old = events.filter((event) => event.agentId === OLD.agentId && ['agent.created', 'credential.created', 'trust_policy.created'].includes(event.type));
    expect(old).toHaveLength(3);
    expect(old.every((event) => event.orgId === platformId)).toBe(true);
    const pending = events.find((event) => event.type === 'token.issued' && event.data.jti === OLD.jti);
    expect(pending).toMatchObject({ orgId: platformId });
    for (const { id, hash } of linkedHashes) expect(events.find((event) => event.id === id)?.hash).toBe(hash);
    // Through the platform's orgId too.
    expect((await readWholeAuditLog(server, admin, `&orgId=${platformId}`)).length).toBe(events.length);

    const verify = await send(server, '/api/v1/audit/verify', bearer(admin));
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ valid: true });
  });
});
