import { describe, expect, it } from '@jest/globals';
import { migrations } from '../../server/migrations/index.js';
import { migrateDown, migrateToLatest } from '../../server/src/storage/database.js';
import { platformOrgId } from '../../server/src/tenancy/organization-store.js';
import { createTestDatabase, isRealPostgres } from '../support/database.js';
import { startTestServer } from '../support/test-server.js';

const ALL = [
  '20261123000000_initial',
  '20261123120000_grant_batches',
  '20261124090000_set_based_grants',
  '20261130090000_registration_policy_scopes',
  '20261130120000_trust_policy_tag',
  '20261130130000_token_provenance',
  '20261130140000_audit_digests',
  '20261201090000_signing_keys_at_rest',
  '20261202090000_organizations',
  '20261203090000_federation',
  '20261204090000_federation_partner_revision',
  '20261205090000_webhooks',
  '20261206090000_audit_created_brin',
  '20261207090000_grant_spends_jti',
];

describe('migrations', () => {
  it('apply, revert and re-apply', async () => {
    expect(migrations.map((migration) => migration.name)).toEqual(ALL);
    const testDatabase = await createTestDatabase();
    const database = testDatabase.open();
    try {
      expect(await migrateToLatest(database)).toEqual(ALL);
      expect(await migrateToLatest(database)).toEqual([]);
      const hasIssueGrants = async () =>
        (await database.knex.raw(`select count(*)::int as n from pg_proc where proname = 'issue_grants'`)).rows[0].n === 1;
      expect(await hasIssueGrants()).toBe(true);
      expect(await migrateDown(database)).toEqual([...ALL].reverse());
      expect(await database.knex.schema.hasTable('agents')).toBe(false);
      expect(await hasIssueGrants()).toBe(false);
      expect(await migrateToLatest(database)).toEqual(ALL);
    } finally {
      await database.close();
      await testDatabase.drop();
    }
  });

  it('makes every registration policy name its scopes: none, for one stored without', async () => {
    const testDatabase = await createTestDatabase();
    const database = testDatabase.open();
    const migration = migrations.find((candidate) => candidate.name === '20261130090000_registration_policy_scopes')!;
    const registrationPolicy = { id: '00000000-0000-4000-8000-00000000beef', provider: 'github', repository: 'octo-org/reg', agent_id: null, scopes: null };
    try {
      await migrateToLatest(database);
      const { knex } = database;
      const platform = { org_id: await platformOrgId(knex) };
      await expect(knex('trust_policies').insert({ ...registrationPolicy, ...platform })).rejects.toThrow(/registration_policy_names_scopes/);
      await migration.down(knex);
      await knex('trust_policies').insert({ ...registrationPolicy, ...platform });
      await migration.up(knex);
      expect(await knex('trust_policies').where({ id: registrationPolicy.id }).first('scopes')).toEqual({ scopes: [] });
    } finally {
      await database.close();
      await testDatabase.drop();
    }
  });

  (isRealPostgres ? it : it.skip)('are safe when several instances start at once on an empty database', async () => {
    // Embedded PGlite is single-process, so this only concerns a real server.
    const testDatabase = await createTestDatabase();
    const databases = Array.from({ length: 4 }, () => testDatabase.open());
    try {
      const applied = await Promise.all(databases.map((database) => migrateToLatest(database)));
      expect(applied.flat()).toEqual(ALL);
    } finally {
      await Promise.all(databases.map((database) => database.close()));
      await testDatabase.drop();
    }
  });

  (isRealPostgres ? it : it.skip)('starts several instances at once with exactly one bootstrap admin and one signing key', async () => {
    const first = await startTestServer({ env: { BOOTSTRAP_ADMIN_CLIENT_ID: '', BOOTSTRAP_ADMIN_CLIENT_SECRET: '' } });
    try {
      const knex = first.deps.knex;
      expect(first.generatedAdmin).toBeDefined();
      expect(await knex('agents').count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await knex('signing_keys').count({ n: '*' })).toEqual([{ n: 1 }]);
    } finally {
      await first.stop();
    }
    const racers = await createTestDatabase();
    const url = racers.url as string;
    const instances = await Promise.all(
      Array.from({ length: 3 }, () =>
        startTestServer({ env: { DATABASE_URL: url, BOOTSTRAP_ADMIN_CLIENT_ID: '', BOOTSTRAP_ADMIN_CLIENT_SECRET: '' } }),
      ),
    );
    try {
      expect(instances.filter((instance) => instance.generatedAdmin)).toHaveLength(1);
      const knex = instances[0].deps.knex;
      expect(await knex('agents').count({ n: '*' })).toEqual([{ n: 1 }]);
      expect(await knex('signing_keys').count({ n: '*' })).toEqual([{ n: 1 }]);
      const { clientId } = instances.find((instance) => instance.generatedAdmin)!.generatedAdmin!;
      expect(clientId).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await Promise.all(instances.map((instance) => instance.stop()));
      await racers.drop();
    }
  });
});

