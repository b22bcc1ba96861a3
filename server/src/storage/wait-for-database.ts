/**
 * The first connection to PostgreSQL, retried. Under a supervisor the database often starts
 * beside the server, or after it: a server that gave up at once would crash-loop until the
 * supervisor gave up on it. Start-up retries with backoff for
 * DATABASE_CONNECT_TIMEOUT_SECONDS, logging each failed attempt, then stops with one line.
 * Only a database that cannot be reached is retried; one that refuses us (a wrong password,
 * a missing database) stops start-up at once.
 */
import type { Logger } from 'pino';
import { isDatabaseUnavailable, pingDatabase, type Database } from './database.js';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5_000;

export class DatabaseUnreachable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DatabaseUnreachable';
  }
}

export interface WaitOptions {
  readonly databaseUrl: string;
  readonly timeoutSeconds: number;
  readonly logger: Pick<Logger, 'warn' | 'info'>;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** Where the database is, fit for a log line: host, port and database name, never the user or password. */
export function describeDatabaseUrl(databaseUrl: string): string {
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname || 'localhost'}:${url.port || '5432'}${url.pathname}`;
  } catch {
    return '(unparsable DATABASE_URL)';
  }
}

/** Why an attempt failed, without anything a connection string could have put in a message. */
function reasonOf(error: unknown): string {
  const { code, name } = error as { code?: unknown; name?: unknown };
  if (typeof code === 'string') return code;
  if (name === 'KnexTimeoutError') return 'timeout';
  return 'connection closed';
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export async function waitForDatabase(database: Database, options: WaitOptions): Promise<void> {
  const { logger, timeoutSeconds } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const where = describeDatabaseUrl(options.databaseUrl);
  const deadline = now() + timeoutSeconds * 1000;
  let delayMs = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt += 1) {
    try {
      await pingDatabase(database.knex);
      if (attempt > 1) logger.info({ database: where, attempt }, 'database reachable');
      return;
    } catch (error) {
      if (!isDatabaseUnavailable(error)) throw error;
      const reason = reasonOf(error);
      const remainingMs = deadline - now();
      if (remainingMs <= 0) {
        throw new DatabaseUnreachable(
          `the database at ${where} could not be reached within DATABASE_CONNECT_TIMEOUT_SECONDS=${timeoutSeconds} (${attempt} attempt${attempt === 1 ? '' : 's'}; last: ${reason})`,
        );
      }
      const retryInMs = Math.min(delayMs, remainingMs);
      logger.warn({ database: where, attempt, reason, retryInMs }, 'database not reachable; retrying');
      await sleep(retryInMs);
      delayMs = Math.min(delayMs * 2, MAX_DELAY_MS);
    }
  }
}
