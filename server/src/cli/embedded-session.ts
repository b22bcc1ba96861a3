/**
 * A CLI command on the embedded database. PGlite belongs to one process at a time, so the
 * command first takes DATA_DIR's lock (see storage/data-dir.ts):
 * - free: the command opens the database itself, and lets go when it is done;
 * - held by another command: it waits its turn (two first runs on a fresh directory would
 *   otherwise both create the database);
 * - held by a running server: it hands the command to that server over the operator
 *   socket, so that what it changes is what the server serves, and nothing is lost when
 *   the server writes its own copy of the files.
 */
import { hasEmbeddedDatabase } from '../storage/data-dir.js';
import { acquireDataDirLock, DataDirBusy, readLiveHolder, type LockHolder } from '../storage/data-dir-lock.js';
import { openDatabase } from '../storage/database.js';
import type { Config } from '../config.js';
import { CliError, EXIT, runOnDatabase, type DatabaseCommand, type Invocation } from './command.js';
import { OperatorSocketUnreachable, sendOperatorCommand } from './operator-socket.js';
import type { Output } from './output.js';

/** How long a command waits for another command, or for a starting server, before it gives up. */
const WAIT_FOR_DATA_DIR_MS = 120_000;
/** A server that stops between our look at the lock and our connection: take DATA_DIR ourselves, a few times at most. */
const MAX_ATTEMPTS = 5;
const RETRY_AFTER_MS = 200;

export interface EmbeddedRun {
  readonly command: DatabaseCommand;
  readonly invocation: Invocation;
  /** The command line as typed, less `--json`: what the server is handed. */
  readonly argv: readonly string[];
  readonly config: Config;
  readonly output: Output;
}

const noDatabase = (dataDir: string) =>
  new CliError(
    `DATA_DIR ${dataDir} holds no database: nothing to read. Check DATA_DIR (or set DATABASE_URL); the server or a command that writes creates the database.`,
    EXIT.usage,
    'configuration',
  );

function describeWait(holder: LockHolder): string {
  return holder.role === 'server'
    ? `sentryagent-idp: waiting for the server (pid ${holder.pid}) on DATA_DIR to start or stop…\n`
    : `sentryagent-idp: waiting for another sentryagent-idp command (pid ${holder.pid}) to finish with DATA_DIR…\n`;
}

export async function runOnEmbeddedDatabase(run: EmbeddedRun): Promise<number> {
  const { command, invocation, config, output } = run;
  const { dataDir } = config;
  // Don't create DATA_DIR (or a database in it) just to report that it is empty.
  if (command.readsOnly && !hasEmbeddedDatabase(dataDir) && !(await readLiveHolder(dataDir))) throw noDatabase(dataDir);
  for (let attempt = 1; ; attempt += 1) {
    let lock;
    try {
      lock = await acquireDataDirLock(dataDir, 'cli', {
        shouldWait: (holder) => holder.role === 'cli' || holder.socket === undefined,
        timeoutMs: WAIT_FOR_DATA_DIR_MS,
        onWaiting: (holder) => process.stderr.write(describeWait(holder)),
      });
    } catch (error) {
      const server = error instanceof DataDirBusy && error.holder.role === 'server' ? error.holder : undefined;
      if (!server?.socket) throw error;
      if (command.needsDatabaseAlone?.(invocation)) {
        throw new CliError(`${command.name} needs DATA_DIR to itself: stop the server (pid ${server.pid}) first`, EXIT.failure, 'data_dir_busy');
      }
      try {
        const reply = await sendOperatorCommand(server.socket, { argv: run.argv, json: output.isJson }, () =>
          process.stderr.write(`sentryagent-idp: waiting for the server (pid ${server.pid}) to answer…\n`),
        );
        output.relay(reply.stdout, reply.stderr);
        return reply.exitCode;
      } catch (failure) {
        if (failure instanceof OperatorSocketUnreachable && attempt < MAX_ATTEMPTS) {
          await new Promise((resolve) => setTimeout(resolve, RETRY_AFTER_MS));
          continue;
        }
        throw failure instanceof OperatorSocketUnreachable
          ? new CliError(`cannot reach the server (pid ${server.pid}) on its operator socket: ${failure.message}`, EXIT.failure)
          : failure;
      }
    }
    try {
      if (command.readsOnly && !hasEmbeddedDatabase(dataDir)) throw noDatabase(dataDir);
      const database = openDatabase({ databaseUrl: undefined, dataDir, poolMax: 2 });
      try {
        return await runOnDatabase(command, invocation, config, database, output);
      } finally {
        await database.close();
      }
    } finally {
      lock.release();
    }
  }
}
