import { describe, expect, it } from '@jest/globals';
import type { Database } from '../../server/src/storage/database.js';
import { DatabaseUnreachable, describeDatabaseUrl, waitForDatabase } from '../../server/src/storage/wait-for-database.js';

const URL_WITH_PASSWORD = 'postgres://idp:hunter2-secret@db.internal:6543/idp';

/** A database whose pings fail with `failures` in turn, then answer; and a clock that the waits move. */
function world(failures: unknown[]) {
  let nowMs = 0;
  let pings = 0;
  const database = {
    knex: {
      raw: async () => {
        pings += 1;
        const failure = failures.shift();
        if (failure) throw failure;
        return { rows: [{}] };
      },
    },
  } as unknown as Database;
  const lines: { level: string; fields: Record<string, unknown>; msg: string }[] = [];
  const logger = {
    warn: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'warn', fields, msg }),
    info: (fields: Record<string, unknown>, msg: string) => lines.push({ level: 'info', fields, msg }),
  };
  const options = (timeoutSeconds: number) => ({
    databaseUrl: URL_WITH_PASSWORD,
    timeoutSeconds,
    logger: logger as never,
    now: () => nowMs,
    sleep: async (ms: number) => void (nowMs += ms),
  });
  return { database, lines, options, pings: () => pings, now: () => nowMs };
}

const refused = () => Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:6543'), { code: 'ECONNREFUSED' });

describe('waiting for the database at start', () => {
  it('retries with doubling delays up to 5 s, logs each attempt without credentials, and says when it got through', async () => {
    const { database, lines, options } = world(Array.from({ length: 7 }, refused));
    await waitForDatabase(database, options(60));
    const retries = lines.filter((line) => line.msg === 'database not reachable; retrying').map((line) => line.fields);
    expect(retries.map((fields) => fields.retryInMs)).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
    expect(retries[0]).toEqual({ database: 'db.internal:6543/idp', attempt: 1, reason: 'ECONNREFUSED', retryInMs: 250 });
    expect(lines.at(-1)).toEqual({ level: 'info', fields: { database: 'db.internal:6543/idp', attempt: 8 }, msg: 'database reachable' });
    expect(JSON.stringify(lines)).not.toContain('hunter2');
  });

  it('logs nothing when the first attempt gets through', async () => {
    const { database, lines, options } = world([]);
    await waitForDatabase(database, options(60));
    expect(lines).toEqual([]);
  });

  it('gives up once DATABASE_CONNECT_TIMEOUT_SECONDS have passed, its last wait cut to the time left', async () => {
    const { database, lines, options, now } = world(Array.from({ length: 100 }, refused));
    await expect(waitForDatabase(database, options(3))).rejects.toEqual(
      new DatabaseUnreachable('the database at db.internal:6543/idp could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS=3 (5 attempts; last: ECONNREFUSED)'),
    );
    expect(lines.map((line) => line.fields.retryInMs)).toEqual([250, 500, 1000, 1250]);
    expect(now()).toBe(3000);
  });

  it('tries once with a timeout of 0', async () => {
    const { database, options, pings } = world([refused(), refused()]);
    await expect(waitForDatabase(database, options(0))).rejects.toThrow('(1 attempt; last: ECONNREFUSED)');
    expect(pings()).toBe(1);
  });

  it('stops at once when the database answers with a refusal rather than being unreachable', async () => {
    const wrongPassword = Object.assign(new Error('password authentication failed for user "idp"'), { code: '28P01' });
    const { database, lines, options, pings } = world([wrongPassword]);
    await expect(waitForDatabase(database, options(60))).rejects.toBe(wrongPassword);
    expect({ pings: pings(), lines }).toEqual({ pings: 1, lines: [] });
  });

  it('names the database by host, port and name only', () => {
    expect(describeDatabaseUrl(URL_WITH_PASSWORD)).toBe('db.internal:6543/idp');
    expect(describeDatabaseUrl('postgres://db/idp')).toBe('db:5432/idp');
  });
});
