/**
 * sentryagent-idp webhooks …, in process on a database of its own with no server (so no
 * worker: queued deliveries stay pending and nothing is sent anywhere). Loopback URLs are
 * allowed through EGRESS_ALLOW_CIDRS, as an operator's private receiver would be; the guard
 * only checks them.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import { loadConfig, type Config } from '../../server/src/config.js';
import { migrateToLatest, type Database } from '../../server/src/storage/database.js';
import { createTestDatabase, testPoolMode, type TestDatabase } from '../support/database.js';
import { TEST_KEK } from '../support/test-server.js';

const RECEIVER = 'http://127.0.0.1:1/hooks';

let testDatabase: TestDatabase;
let database: Database;
let config: Config;
/** The same installation without EGRESS_ALLOW_CIDRS: loopback is refused. */
let strictConfig: Config;

beforeAll(async () => {
  testDatabase = await createTestDatabase({ migrated: true });
  database = testDatabase.open();
  await migrateToLatest(database);
  const env = { KEY_ENCRYPTION_KEY: TEST_KEK, ...(testDatabase.url ? { DATABASE_URL: testDatabase.url, DATABASE_POOL_MODE: testPoolMode } : {}) };
  config = loadConfig({ ...env, EGRESS_ALLOW_CIDRS: '127.0.0.0/8' });
  strictConfig = loadConfig(env);
});
afterAll(async () => {
  await database.close();
  await testDatabase.drop();
});

async function run(on: Config, argv: string[]) {
  const { output, printed } = bufferedOutput(argv.includes('--json'));
  const exitCode = await runCommandOn(argv.filter((arg) => arg !== '--json'), on, database, output, { caller: OPERATOR_CALLER, isSchemaCurrent: true });
  const { stdout, stderr } = printed();
  return { exitCode, stdout, stderr, json: () => JSON.parse(stdout) };
}
const cli = (...argv: string[]) => run(config, argv);
/** The JSON a command printed, once it succeeded. */
async function ok(...argv: string[]) {
  const reply = await cli(...argv, '--json');
  expect({ argv, exitCode: reply.exitCode, stderr: reply.stderr }).toEqual({ argv, exitCode: 0, stderr: '' });
  return reply.json();
}
const endpointCount = async () => Number((await database.knex('webhook_endpoints').count({ n: '*' }))[0].n);

describe('sentryagent-idp webhooks create and list', () => {
  it('prints the signing secret once, with the advice to store it, and lists the endpoint without it', async () => {
    const created = await cli('webhooks', 'create', '--url', RECEIVER, '--events', 'agent.created,agent.suspended', '--description', 'ops pager');
    expect(created).toMatchObject({ exitCode: 0, stderr: '' });
    const secret = /^signing secret: (\S+)$/m.exec(created.stdout)?.[1];
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(created.stdout).toContain('Store it now: it is never shown again.');
    const webhookId = /webhook id: +(\S+)/.exec(created.stdout)?.[1];
    expect(webhookId).toMatch(/^[0-9a-f-]{36}$/);

    const listed = await cli('webhooks', 'list');
    expect(listed.exitCode).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${webhookId} +${RECEIVER.replace(/[.]/g, '\\.')} +agent\\.created,agent\\.suspended +enabled +never$`, 'm'));
    const json = await ok('webhooks', 'list');
    expect(json).toEqual([expect.objectContaining({ webhookId, url: RECEIVER, eventTypes: ['agent.created', 'agent.suspended'], description: 'ops pager', enabled: true })]);
    expect(JSON.stringify(json)).not.toContain(secret);
    expect((await cli('webhooks', 'deliveries', webhookId!)).stdout).not.toContain(secret!);
    await ok('webhooks', 'delete', webhookId!);
  });

  it('answers the secret in --json, and creates a disabled endpoint with --disabled', async () => {
    const endpoint = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*', '--disabled');
    expect(endpoint).toMatchObject({ url: RECEIVER, eventTypes: ['*'], enabled: false, secret: expect.stringMatching(/^whsec_/) });
    expect((await cli('webhooks', 'list')).stdout).toMatch(new RegExp(`^${endpoint.webhookId} .* disabled +never$`, 'm'));
    const test = await cli('webhooks', 'test', endpoint.webhookId);
    expect(test.exitCode).toBe(4);
    expect(test.stderr).toContain('disabled');
    await ok('webhooks', 'delete', endpoint.webhookId);
  });

  it('refuses a URL the egress guard refuses, creating nothing', async () => {
    const before = await endpointCount();
    const metadata = await cli('webhooks', 'create', '--url', 'https://169.254.169.254/hook', '--events', '*');
    expect(metadata.exitCode).toBe(2);
    expect(metadata.stderr).toMatch(/^sentryagent-idp: url cannot be used for webhooks: the host resolves to an address that is not allowed/);
    const loopback = await run(strictConfig, ['webhooks', 'create', '--url', RECEIVER, '--events', '*']);
    expect(loopback.exitCode).toBe(2);
    expect(loopback.stderr).toMatch(/^sentryagent-idp: url cannot be used for webhooks: /);
    expect(await endpointCount()).toBe(before);
  });

  it('names a missing or invalid option in the command line\'s words', async () => {
    const before = await endpointCount();
    expect(await cli('webhooks', 'create', '--events', '*')).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: --url is required\n' });
    expect((await cli('webhooks', 'create', '--url', RECEIVER)).stderr).toMatch(/^sentryagent-idp: --events is required/);
    const unknown = await cli('webhooks', 'create', '--url', RECEIVER, '--events', 'agent.created,agent.exploded');
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/^sentryagent-idp: The webhook is invalid: --events: /);
    const ftp = await cli('webhooks', 'create', '--url', 'ftp://example.com/x', '--events', '*');
    expect(ftp.exitCode).toBe(2);
    expect(ftp.stderr).toMatch(/^sentryagent-idp: The webhook is invalid: --url: /);
    expect(await endpointCount()).toBe(before);
    expect((await cli('webhooks', 'delete', 'not-a-uuid')).exitCode).toBe(2);
    expect((await cli('webhooks', 'redeliver', '00000000-0000-4000-8000-000000000009', 'abc')).stderr).toMatch(/deliveryId must be a delivery id/);
  });
});

describe('sentryagent-idp webhooks test, deliveries and redeliver', () => {
  it('queues webhook.test, lists it as pending, refuses to redeliver it while pending, and redelivers it once finished', async () => {
    const { webhookId } = await ok('webhooks', 'create', '--url', RECEIVER, '--events', 'agent.created');
    const test = await cli('webhooks', 'test', webhookId);
    expect(test.exitCode).toBe(0);
    const deliveryId = /delivery (\d+)/.exec(test.stdout)?.[1];
    expect(deliveryId).toMatch(/^\d+$/);

    const table = await cli('webhooks', 'deliveries', webhookId);
    expect(table.stdout).toMatch(new RegExp(`^DELIVERY ID +EVENT +STATUS +ATTEMPTS +LAST STATUS CODE +CREATED\\n${deliveryId} +webhook\\.test +pending +0 +- +\\S+$`, 'm'));
    expect(await ok('webhooks', 'deliveries', webhookId, '--status', 'pending', '--event', 'webhook.test')).toEqual([
      expect.objectContaining({ deliveryId, eventType: 'webhook.test', status: 'pending', attempts: 0 }),
    ]);
    expect(await ok('webhooks', 'deliveries', webhookId, '--status', 'failed')).toEqual([]);
    expect(await ok('webhooks', 'deliveries', webhookId, '--since', '2999-01-01T00:00:00Z')).toEqual([]);
    expect(await ok('webhooks', 'deliveries', webhookId, '--attempts', deliveryId!)).toEqual([]);

    const pending = await cli('webhooks', 'redeliver', webhookId, deliveryId!);
    expect(pending.exitCode).toBe(4);
    expect(pending.stderr).toContain('already pending');

    // As the worker leaves it after its last attempt.
    await database.knex('webhook_deliveries').where({ id: deliveryId }).update({ status: 'failed', attempts: 8, next_attempt_at: null, last_status_code: 503 });
    expect((await cli('webhooks', 'deliveries', webhookId)).stdout).toMatch(new RegExp(`^${deliveryId} +webhook\\.test +failed +8 +503 `, 'm'));
    const redelivered = await cli('webhooks', 'redeliver', webhookId, deliveryId!);
    expect(redelivered).toMatchObject({ exitCode: 0, stdout: `delivery ${deliveryId} (webhook.test) queued again\n` });
    expect(await ok('webhooks', 'deliveries', webhookId)).toEqual([expect.objectContaining({ deliveryId, status: 'pending' })]);
    await ok('webhooks', 'delete', webhookId);
  });

  it('refuses bad filters, and a delivery of another endpoint is not found', async () => {
    const { webhookId } = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*');
    const other = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*');
    const { deliveryId } = await ok('webhooks', 'test', other.webhookId);
    expect((await cli('webhooks', 'deliveries', webhookId, '--attempts', deliveryId)).exitCode).toBe(3);
    expect((await cli('webhooks', 'redeliver', webhookId, deliveryId)).exitCode).toBe(3);
    expect((await cli('webhooks', 'deliveries', webhookId, '--status', 'lost')).stderr).toMatch(/^sentryagent-idp: --status must be one of pending, succeeded, failed/);
    expect((await cli('webhooks', 'deliveries', webhookId, '--event', 'agent.exploded')).exitCode).toBe(2);
    expect((await cli('webhooks', 'deliveries', webhookId, '--since', 'yesterday')).exitCode).toBe(2);
    expect((await cli('webhooks', 'deliveries', webhookId, '--limit', '0')).exitCode).toBe(2);
    expect((await cli('webhooks', 'deliveries', webhookId, '--attempts', deliveryId, '--status', 'pending')).exitCode).toBe(2);
    await ok('webhooks', 'delete', webhookId);
    await ok('webhooks', 'delete', other.webhookId);
  });
});

describe('sentryagent-idp webhooks delete and --org', () => {
  it('deletes an endpoint: it is no longer listed, and a second delete is not found', async () => {
    const { webhookId } = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*');
    expect(await cli('webhooks', 'delete', webhookId)).toMatchObject({ exitCode: 0, stdout: `webhook endpoint ${webhookId} deleted\n` });
    expect((await cli('webhooks', 'list')).stdout).not.toContain(webhookId);
    expect((await cli('webhooks', 'delete', webhookId)).exitCode).toBe(3);
  });

  it('creates and lists in the organization --org names; an endpoint of another organization is not found', async () => {
    const org = (await ok('orgs', 'create', '--slug', 'hooks-acme', '--name', 'Acme')).organization;
    const acme = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*', '--org', 'hooks-acme');
    expect(acme.orgId).toBe(org.orgId);
    const platform = await ok('webhooks', 'create', '--url', RECEIVER, '--events', '*');
    expect(platform.orgId).not.toBe(org.orgId);

    expect((await ok('webhooks', 'list', '--org', 'hooks-acme')).map((endpoint: { webhookId: string }) => endpoint.webhookId)).toEqual([acme.webhookId]);
    expect((await ok('webhooks', 'list')).map((endpoint: { webhookId: string }) => endpoint.webhookId)).toEqual([platform.webhookId]);
    for (const argv of [['test', platform.webhookId], ['deliveries', platform.webhookId], ['delete', platform.webhookId], ['redeliver', platform.webhookId, '1']]) {
      const reply = await cli('webhooks', ...argv, '--org', 'hooks-acme');
      expect({ argv, exitCode: reply.exitCode }).toEqual({ argv, exitCode: 3 });
    }
    expect((await cli('webhooks', 'list', '--org', 'no-such-org')).exitCode).toBe(3);
    await ok('webhooks', 'delete', acme.webhookId, '--org', 'hooks-acme');
    await ok('webhooks', 'delete', platform.webhookId);
  });
});
