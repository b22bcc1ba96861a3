/**
 * Named prepared statements for the hot paths, on a pooled connection taken from Knex
 * but without Knex's query compilation: the statement text is parsed once per
 * connection. The embedded database (PGlite) takes the same `$n` text.
 *
 * Behind a transaction-mode pooler (DATABASE_POOL_MODE=transaction) the next statement
 * may reach a server connection that never saw the name ("prepared statement … does not
 * exist"): there the statements are unnamed, parsed at every call.
 */
import type { Knex } from 'knex';
import type { Database } from './database.js';

interface PgConnection {
  query(config: { name?: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}
interface PgliteConnection {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

export type RunPrepared = <T>(name: string, text: string, values: unknown[]) => Promise<T[]>;

/**
 * Told of each statement that answered: its name, the seconds from asking the pool for a
 * connection to the result (what the requests waiting on it waited), and how many calls it
 * served (the hot statements are batches taking one array per column: the first one's length).
 */
export type StatementObserver = (name: string, seconds: number, batchSize: number) => void;

export function preparedStatements(
  { knex, isEmbedded, poolMode }: Pick<Database, 'knex' | 'isEmbedded' | 'poolMode'>,
  observe?: StatementObserver,
): RunPrepared {
  const client = knex.client as { acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<void> };
  const isNamed = poolMode === 'session';
  return async <T>(name: string, text: string, values: unknown[]): Promise<T[]> => {
    const startedAt = performance.now();
    const connection = await client.acquireConnection();
    try {
      const result = isEmbedded
        ? await (connection as PgliteConnection).query(text, values)
        : await (connection as PgConnection).query(isNamed ? { name, text, values } : { text, values });
      observe?.(name, (performance.now() - startedAt) / 1000, Array.isArray(values[0]) ? values[0].length : 1);
      return result.rows as T[];
    } finally {
      await client.releaseConnection(connection);
    }
  };
}
