/**
 * DATABASE_POOL_MODE=transaction: behind a transaction-mode pooler (PgBouncer, RDS Proxy)
 * consecutive statements may reach different server connections, so a named prepared
 * statement may be missing where it runs next ("prepared statement … does not exist") and
 * a session advisory lock stays on whichever connection took it. Every statement the pg
 * driver sends is recorded while a server starts (migrations), grants, introspects,
 * revokes and links its audit chain; `session`, the default, is the control: there the
 * hot paths are named and the migrations take the session lock.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { isBehindPooler, isRealPostgres } from '../support/database.js';
import { startTestServer } from '../support/test-server.js';
import { adminToken, bearer, form, send } from '../support/api.js';

interface SentStatement {
  readonly name: string | undefined;
  readonly text: string;
}

const sent: SentStatement[] = [];
const originalQuery = pg.Client.prototype.query;

beforeAll(() => {
  pg.Client.prototype.query = function (this: pg.Client, config: unknown, ...rest: unknown[]) {
    const statement = typeof config === 'string' ? { text: config } : (config as { name?: string; text?: string });
    sent.push({ name: statement.name, text: String(statement.text) });
    return (originalQuery as (...args: unknown[]) => unknown).call(this, config, ...rest);
  } as typeof pg.Client.prototype.query;
});
afterAll(() => {
  pg.Client.prototype.query = originalQuery;
});

const SESSION_LOCK = /pg_(try_)?advisory_(un)?lock(_shared)?\s*\(/i;

/** What a server in `mode` sends from its start through grants, introspection, revocation and an audit link. */
async function statementsOfServerIn(mode: 'session' | 'transaction'): Promise<SentStatement[]> {
  sent.length = 0;
  const server = await startTestServer({ env: { DATABASE_POOL_MODE: mode } });
  try {
    const admin = await adminToken(server);
    const token = await adminToken(server);
    const introspection = await send(server, '/api/v1/token/introspect', bearer(admin, form({ token })));
    expect(introspection.body).toMatchObject({ active: true });
    expect((await send(server, '/api/v1/token/revoke', bearer(admin, form({ token })))).status).toBe(200);
    expect((await send(server, '/api/v1/token/introspect', bearer(admin, form({ token })))).body).toEqual({ active: false });
    // The audit chain is linked under its lock by the time verification answers.
    const verified = await send(server, '/api/v1/audit/verify', bearer(admin));
    expect(verified.body).toMatchObject({ valid: true });
    return [...sent];
  } finally {
    await server.stop();
  }
}

const describeWithPostgres = isRealPostgres ? describe : describe.skip; // PGlite is one in-process connection: no pooler, no pg driver

describeWithPostgres('DATABASE_POOL_MODE', () => {
  it('sends no named statement and takes no session advisory lock in transaction mode', async () => {
    const statements = await statementsOfServerIn('transaction');

    expect(statements.length).toBeGreaterThan(10);
    expect(statements.filter((statement) => statement.name !== undefined)).toEqual([]);
    expect(statements.filter((statement) => SESSION_LOCK.test(statement.text))).toEqual([]);
    expect(statements.some((statement) => /pg_advisory_xact_lock/.test(statement.text))).toBe(true);
  });

  // Through a transaction pooler a session lock would outlive this test on some server connection.
  const itWithoutPooler = isBehindPooler ? it.skip : it;
  itWithoutPooler('keeps named prepared statements and the session migration lock in session mode, the default', async () => {
    const statements = await statementsOfServerIn('session');

    expect(statements.filter((statement) => statement.name !== undefined).length).toBeGreaterThan(0);
    expect(statements.some((statement) => /pg_advisory_lock\(/.test(statement.text))).toBe(true);
  });
});
