/**
 * WORKERS > 1: one primary process and that many server processes sharing one listening
 * port (node:cluster). The primary waits for the database (storage/wait-for-database.ts)
 * and prepares it once (migrations, bootstrap admin, first signing key) so that generated
 * credentials are printed once, then forks the workers, replaces a worker that dies, and on
 * SIGTERM has every worker drain before it exits. Workers are ordinary instances:
 * everything they share lives in the database. A worker listens before it is ready and
 * says when it is; the primary logs "listening" once all of them are.
 */
import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import type { GeneratedAdmin } from './agents/bootstrap-admin.js';
import { prepareDatabase } from './server.js';
import { openDatabase } from './storage/database.js';
import { waitForDatabase } from './storage/wait-for-database.js';

/** A worker that dies this soon after its start is not replaced in a loop. */
const CRASH_LOOP_MS = 5_000;

export interface PrimaryOptions {
  readonly logger: Logger;
  readonly announceGeneratedAdmin: (admin: GeneratedAdmin) => void;
  /** Called once every worker is listening; resolves the port they share. */
  readonly onListening?: (port: number) => void;
}

/** What a worker sends its primary once it serves (main.ts). */
export interface WorkerReady {
  readonly type: 'sentryagent-idp:worker-ready';
  readonly port: number;
}

export const workerReady = (port: number): WorkerReady => ({ type: 'sentryagent-idp:worker-ready', port });

const isWorkerReady = (message: unknown): message is WorkerReady =>
  typeof message === 'object' && message !== null && (message as WorkerReady).type === 'sentryagent-idp:worker-ready';

export async function runPrimary(config: Config, options: PrimaryOptions): Promise<{ stop(signal: string): Promise<number> }> {
  const { logger } = options;
  const database = openDatabase({ databaseUrl: config.databaseUrl, poolMode: config.databasePoolMode, dataDir: config.dataDir, logger });
  try {
    // As a single server does (storage/wait-for-database.ts); the workers start once it is reachable.
    if (config.databaseUrl !== undefined) {
      await waitForDatabase(database, { databaseUrl: config.databaseUrl, timeoutSeconds: config.databaseConnectTimeoutSeconds, logger });
    }
    const { generatedAdmin, keys } = await prepareDatabase(database, config, logger);
    keys.stop();
    if (generatedAdmin) options.announceGeneratedAdmin(generatedAdmin);
  } finally {
    await database.close();
  }

  let stopping = false;
  const startedAt = new Map<Worker, number>();
  const fork = () => startedAt.set(cluster.fork(), Date.now());

  // A worker listens before it is ready (server.ts); it says so once it serves.
  let ready = 0;
  let announced = false;
  cluster.on('message', (_worker, message: unknown) => {
    if (!isWorkerReady(message)) return;
    ready += 1;
    if (announced || ready < config.workers) return;
    announced = true;
    logger.info({ port: message.port, host: config.host, workers: config.workers, database: 'postgres', alg: config.signingAlg }, 'listening');
    logger.flush();
    options.onListening?.(message.port);
  });
  cluster.on('exit', (worker, code, signal) => {
    const lifetimeMs = Date.now() - (startedAt.get(worker) ?? 0);
    startedAt.delete(worker);
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited');
    if (lifetimeMs < CRASH_LOOP_MS) {
      logger.fatal({ lifetimeMs }, 'worker died right after its start; stopping instead of restarting it in a loop');
      void stop('crash-loop').then((exitCode) => process.exit(exitCode || 1));
      return;
    }
    fork();
  });
  for (let i = 0; i < config.workers; i += 1) fork();

  let stopped: Promise<number> | undefined;
  const stop = (signal: string) =>
    (stopped ??= new Promise<number>((resolve) => {
      stopping = true;
      logger.info({ signal, workers: startedAt.size }, 'shutting down: workers finish their in-flight requests');
      const workers = [...startedAt.keys()];
      if (workers.length === 0) return resolve(0);
      let failed = false;
      let remaining = workers.length;
      for (const worker of workers) {
        worker.once('exit', (code) => {
          failed ||= code !== 0;
          remaining -= 1;
          if (remaining === 0) resolve(failed ? 1 : 0);
        });
        worker.process.kill('SIGTERM');
      }
    }));
  return { stop };
}
