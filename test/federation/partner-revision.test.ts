/**
 * A federated grant is issued only at the partner revision its token was verified against
 * (migration 20261204090000_federation_partner_revision): a change of the partner committed
 * between the read and the grant refuses it at issue_grants' gate, and a change that starts
 * while a grant holds the partner waits for it, so that its revocation takes the new token too.
 */
import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { createBindingInput, createPartnerInput } from '../../server/src/federation/federation-input.js';
import { FederationService } from '../../server/src/federation/federation-service.js';
import type { Partner } from '../../server/src/federation/federation-store.js';
import { issueGrantBatch, type GrantRow } from '../../server/src/oauth/grant-batches.js';
import { adminToken, createAgent } from '../support/api.js';
import { isRealPostgres } from '../support/database.js';
import { claimsOfJwt } from '../support/load.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

const EC_KEY = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });

let server: TestServer;
let federation: FederationService;
let partner: Partner;
let agentId: string;
let bindingId: string;

beforeAll(async () => {
  server = await startTestServer();
  federation = new FederationService({ knex: server.deps.knex, clock: server.deps.clock });
  const admin = await adminToken(server);
  partner = await federation.createPartner(
    OPERATOR_CALLER,
    createPartnerInput.parse({ preset: 'custom', name: 'ci', issuer: 'https://ci.example.com', keys: { keys: [{ ...EC_KEY, kid: 'k1' }] }, audiences: ['idp'], orgIds: [claimsOfJwt(admin).org_id] }),
  );
  agentId = (await createAgent(server, admin, { name: 'ci-agent', scopes: ['agents:read'] })).agentId;
  const binding = await federation.createBinding(OPERATOR_CALLER, createBindingInput.parse({ partnerId: partner.partnerId, agentId, conditions: [{ claim: 'sub', op: 'eq', value: 'job' }] }));
  bindingId = binding.bindingId;
});
afterAll(() => server?.stop());

function grant(partnerRevision: number): GrantRow {
  const jti = crypto.randomUUID();
  const now = Math.floor(Date.now() / 1000);
  return {
    agentId,
    credentialId: null,
    trustPolicies: null,
    bindingId,
    partnerRevision,
    usedJti: null,
    usedJtiExp: null,
    scope: 'agents:read',
    windowStart: now - (now % 60),
    month: new Date().toISOString().slice(0, 7),
    jti,
    grantType: 'token_exchange',
    issuedAt: now,
    expiresAt: now + 300,
    auditType: 'federation.exchange.granted',
    auditActor: 'federation:https://ci.example.com',
    auditData: JSON.stringify({ jti }),
  };
}

const issue = (row: GrantRow) => issueGrantBatch(server.deps.query, server.config, [row]).then(([outcome]) => outcome);
const currentRevision = async () => (await federation.getPartner(OPERATOR_CALLER, partner.partnerId)).revision;
const isLive = async (jti: string) => (await server.deps.knex('access_tokens').where({ jti }).whereNull('revoked_at').first()) !== undefined;

// Two transactions at once need a real server: embedded PGlite is one in-process connection.
const itWithPostgres = isRealPostgres ? it : it.skip;

describe('the partner revision in the grant gate', () => {
  it('issues at the current revision and refuses at an older one', async () => {
    const revision = await currentRevision();
    expect((await issue(grant(revision)))?.issued).toBe(1);
    await federation.updatePartner(OPERATOR_CALLER, partner.partnerId, { maxTokenAgeSeconds: 120 });
    expect(await currentRevision()).toBe(revision + 1);
    const stale = await issue(grant(revision));
    expect(stale).toMatchObject({ refusal: 'gate', issued: 0 });
    expect((await issue(grant(revision + 1)))?.issued).toBe(1);
  });

  itWithPostgres('a change that locked the partner first makes a grant of the old revision wait, then refuses it', async () => {
    const revision = await currentRevision();
    const trx = await server.deps.knex.transaction();
    let settled = false;
    let pending: Promise<Awaited<ReturnType<typeof issue>>> | undefined;
    try {
      await trx('federation_partners').where({ id: partner.partnerId }).forUpdate().first();
      pending = issue(grant(revision)).finally(() => {
        settled = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(settled).toBe(false); // waiting for the partner row
      await trx('federation_partners').where({ id: partner.partnerId }).update({ revision: revision + 1 });
      await trx.commit();
    } catch (error) {
      await trx.rollback();
      throw error;
    }
    expect(await pending).toMatchObject({ refusal: 'gate', issued: 0 });
  });

  itWithPostgres('a change of the partner waits for a grant holding it, then revokes its token', async () => {
    const revision = await currentRevision();
    const row = grant(revision);
    // The grant's gate holds the partner share-locked until its transaction commits.
    const trx = await server.deps.knex.transaction();
    try {
      await trx.raw(
        `select * from issue_grants(?::uuid[], ?::uuid[], ?::text[], ?::bigint[], 0, ?::text[], 0, ?::uuid[], ?::text[], ?::bigint[], ?::bigint[], ?::text[], ?::text[], ?::jsonb[], ?::text[], ?::uuid[], ?::int[])`,
        ([[row.agentId], [null], [row.scope], [row.windowStart], [row.month], [row.jti], [row.grantType], [row.issuedAt], [row.expiresAt], [row.auditType], [row.auditActor], [row.auditData], [null], [row.bindingId], [row.partnerRevision]] as unknown as readonly string[]),
      );
      let updated = false;
      const update = federation.updatePartner(OPERATOR_CALLER, partner.partnerId, { maxTokenAgeSeconds: 240 }).then(() => {
        updated = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(updated).toBe(false); // waiting for the grant
      await trx.commit();
      await update;
    } catch (error) {
      await trx.rollback();
      throw error;
    }
    expect(await isLive(row.jti)).toBe(false);
  });
});
