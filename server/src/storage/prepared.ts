/**
 * Named prepared statements for the hot paths, on a pooled connection taken from Knex
 * but without Knex's query compilation: the statement text is parsed once per
 * connection. The embedded database (PGlite) takes the same `$n` text.
 */
import type { Knex } from 'knex';

interface PgConnection {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: unknown[] }>;
}
interface PgliteConnection {
  query(text: string, values: unknown[]): Promise<{ rows: unknown[] }>;
}

export type RunPrepared = <T>(name: string, text: string, values: unknown[]) => Promise<T[]>;

export function preparedStatements(knex: Knex, isEmbedded: boolean): RunPrepared {
  const client = knex.client as { acquireConnection(): Promise<unknown>; releaseConnection(connection: unknown): Promise<void> };
  return async <T>(name: string, text: string, values: unknown[]): Promise<T[]> => {
    const connection = await client.acquireConnection();
    try {
      const result = isEmbedded
        ? await (connection as PgliteConnection).query(text, values)
        : await (connection as PgConnection).query({ name, text, values });
      return result.rows as T[];
    } finally {
      await client.releaseConnection(connection);
    }
  };
}
