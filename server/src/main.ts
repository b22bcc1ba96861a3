/**
 * loadConfig → open database → migrate → createApp → listen; SIGTERM drains and exits.
 * With WORKERS > 1 this process is the primary of that many such servers (workers.ts).
 */
import cluster from 'node:cluster';
import { ConfigError, loadConfig, type Config } from './config.js';
import { formatGeneratedAdmin, type GeneratedAdmin } from './agents/bootstrap-admin.js';
import { createLogger } from './logger.js';
import { startServer } from './server.js';
import { runPrimary, workerReady } from './workers.js';
import { DataDirError } from './storage/data-dir.js';
import { DataDirBusy } from './storage/data-dir-lock.js';

const announceGeneratedAdmin = (admin: GeneratedAdmin) => process.stdout.write(formatGeneratedAdmin(admin) + '\n');

async function main(): Promise<void> {
  // What this process writes (DATA_DIR's database, lock and operator socket) is its user's alone.
  process.umask(0o077);
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sentryagent-idp: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  const exit = (code: number) => logger.flush(() => process.exit(code));

  if (config.workers > 1 && cluster.isPrimary) {
    const primary = await runPrimary(config, { logger, announceGeneratedAdmin });
    onShutdownSignal((signal) => void primary.stop(signal).then(exit));
    return;
  }

  const server = await startServer(config, {
    logger,
    // A worker's primary has printed them already; a worker logs its own start quietly.
    announceGeneratedAdmin: cluster.isWorker ? undefined : announceGeneratedAdmin,
    listeningMessage: cluster.isWorker ? 'worker listening' : 'listening',
  });
  if (cluster.isWorker) process.send?.(workerReady(server.port));
  onShutdownSignal((signal) => {
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => exit(0),
      () => exit(1),
    );
  });
}

/**
 * Runs `shutdown` on the first SIGTERM or SIGINT and ignores repeats: a supervisor that
 * signals the whole process group reaches workers both directly and through the primary,
 * and a second signal must not cut the requests the first one let finish.
 */
function onShutdownSignal(shutdown: (signal: string) => void): void {
  let isShuttingDown = false;
  const handle = (signal: string) => {
    if (isShuttingDown) return;
    isShuttingDown = true;
    shutdown(signal);
  };
  process.on('SIGTERM', () => handle('SIGTERM'));
  process.on('SIGINT', () => handle('SIGINT'));
}

main().catch((error: unknown) => {
  // A DATA_DIR that cannot be used, or that another server holds: its own line, naming why.
  if (error instanceof DataDirError || error instanceof DataDirBusy) {
    process.stderr.write(`sentryagent-idp: ${error.message}\n`);
    process.exit(error instanceof DataDirError ? 2 : 1);
  }
  process.stderr.write(`sentryagent-idp: failed to start: ${(error as Error).message}\n`);
  process.exit(1);
});
