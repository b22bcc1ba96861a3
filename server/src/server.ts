/** Everything `main` does short of reading the environment and handling signals, so that
 * tests can run whole instances (several on one database) in process. */
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { createApp, type Lifecycle } from './app.js';
import { ensureBootstrapAdmin, FIRST_ADMIN_HINT, type GeneratedAdmin } from './agents/bootstrap-admin.js';
import { createMetrics } from './http/observability.js';
import { SigningKeys } from './keys/signing-keys.js';
import { SigningKeyService } from './keys/signing-key-service.js';
import { loadKeyRing } from './keys/key-ring.js';
import type { KeyRing } from './keys/key-encryption.js';
import { GitHubJwksCache } from './github/jwks-cache.js';
import { AccessTokens } from './oauth/access-tokens.js';
import { isDatabaseUnavailable, migrateToLatest, openDatabase, type Database } from './storage/database.js';
import { startMaintenance } from './maintenance.js';
import { WebhookWorker } from './webhooks/delivery-worker.js';
import { UsageRefusals } from './organizations/usage-refusals.js';
import { createEgressFetch, type Resolver } from './egress/egress-guard.js';
import { preparedStatements } from './storage/prepared.js';
import { ClientDirectory } from './oauth/client-directory.js';
import { systemClock, type Clock } from './clock.js';
import type { AppDeps } from './app.js';
import { runForwardedCommand } from './cli/command-line.js';
import { serveOperatorSocket, type OperatorSocket } from './cli/operator-socket.js';
import { acquireDataDirLock, type DataDirLock } from './storage/data-dir-lock.js';
import { waitForDatabase } from './storage/wait-for-database.js';
import { answerWhileStarting } from './http/while-starting.js';

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly deps: AppDeps;
  readonly database: Database;
  readonly generatedAdmin: GeneratedAdmin | undefined;
  readonly httpServer: http.Server;
  /** Stop accepting, finish in-flight requests, stop background work, close the database. */
  close(): Promise<void>;
}

export interface StartOptions {
  readonly logger: Logger;
  /** An already open database (tests share one between instances); opened from config otherwise. */
  readonly database?: Database;
  /** Shows generated bootstrap credentials; called before "listening" is logged, so they are on screen once the server is. */
  readonly announceGeneratedAdmin?: (admin: GeneratedAdmin) => void;
  /** The start-up log line's message (default "listening"; a cluster worker's says so). */
  readonly listeningMessage?: string;
  /** How long a connection idle at shutdown may still send a last request (default 1 s). */
  readonly idleGraceMs?: number;
  /** The time source (tests move it); the system clock by default. */
  readonly clock?: Clock;
  /** How outbound fetches resolve names (tests stub it; the egress guard checks every answer). */
  readonly resolve?: Resolver;
}

/**
 * What every start does first, and a cluster's primary does once for its workers: migrate,
 * ensure the bootstrap admin (or say how to make one) and an active signing key (rotating
 * out keys stored in clear once there is a key-encryption key), and load the keys
 * (refreshed until `keys.stop()`).
 */
export async function prepareDatabase(
  database: Database,
  config: Config,
  logger: Logger,
  clock: Clock = systemClock,
): Promise<{ generatedAdmin: GeneratedAdmin | undefined; keys: SigningKeys; keyRing: KeyRing }> {
  const applied = await migrateToLatest(database);
  if (applied.length > 0) logger.info({ migrations: applied }, 'migrations applied');
  const { generatedAdmin, isAdminWithheld } = await ensureBootstrapAdmin(database.knex, config);
  if (isAdminWithheld) logger.warn(FIRST_ADMIN_HINT);
  const { ring, source } = loadKeyRing(config);
  if (source === 'none') {
    logger.warn('KEY_ENCRYPTION_KEY is not set: signing keys are stored in clear in the database; set it (32 random bytes, base64) to encrypt them');
  }
  const startup = await new SigningKeyService({ knex: database.knex, clock, keyRing: () => ring }).prepareForStart(config.signingAlg);
  if (startup.rotatedOutOfClear) {
    const { kid, clear } = startup.rotatedOutOfClear;
    logger.warn({ kid, clear }, 'signing keys stored in clear were rotated out: a new encrypted key signs; the old private keys are erased, but older backups still hold them');
  }
  const keys = new SigningKeys(database.knex, config.signingAlg, config.tokenTtlSeconds, clock, {
    keyRing: ring,
    onRefreshFailed: (error) => {
      if (!isDatabaseUnavailable(error)) logger.error({ err: { message: (error as Error).message } }, 'reloading the signing keys failed');
    },
  });
  await keys.start();
  return { generatedAdmin, keys, keyRing: ring };
}

/** How long a starting server waits for a CLI command that holds the embedded database. */
const WAIT_FOR_COMMAND_MS = 60_000;

/**
 * The embedded database is one process's: a server on it holds DATA_DIR's lock, refusing
 * to start beside another server and waiting for a CLI command to finish.
 */
function lockDataDir(config: Config, logger: Logger): Promise<DataDirLock> {
  return acquireDataDirLock(config.dataDir, 'server', {
    shouldWait: (holder) => holder.role === 'cli',
    timeoutMs: WAIT_FOR_COMMAND_MS,
    onWaiting: (holder) => logger.info({ holderPid: holder.pid }, 'waiting for a sentryagent-idp command to finish with DATA_DIR'),
  });
}

export async function startServer(config: Config, options: StartOptions): Promise<RunningServer> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const ownsDatabase = options.database === undefined;
  const dataDirLock = ownsDatabase && config.databaseUrl === undefined ? await lockDataDir(config, logger) : undefined;
  // What a failed start has to undo, last first.
  const undo: (() => unknown)[] = [() => dataDirLock?.release()];
  try {
    // The listener comes first, so that a supervisor sees the process alive (`/healthz`)
    // and not ready (`/readyz` 503) while the database is waited for and prepared.
    let handleRequest: http.RequestListener = answerWhileStarting;
    const httpServer = http.createServer((request, response) => handleRequest(request, response));
    httpServer.keepAliveTimeout = 65_000;
    httpServer.on('clientError', answerUnparsableRequest);
    await new Promise<void>((resolve, reject) => {
      httpServer.once('error', reject);
      httpServer.listen(config.port, config.host, () => resolve());
    });
    undo.push(() => {
      httpServer.closeAllConnections();
      return new Promise<void>((resolve) => httpServer.close(() => resolve()));
    });
    const port = (httpServer.address() as AddressInfo).port;
    logger.info({ port, host: config.host }, 'accepting connections; not ready until the database is');

    const database = options.database ?? openDatabase({ databaseUrl: config.databaseUrl, poolMode: config.databasePoolMode, dataDir: config.dataDir, logger });
    if (ownsDatabase) undo.push(() => database.close());
    if (ownsDatabase && config.databaseUrl !== undefined) {
      await waitForDatabase(database, { databaseUrl: config.databaseUrl, timeoutSeconds: config.databaseConnectTimeoutSeconds, logger });
    }
    const { generatedAdmin, keys, keyRing } = await prepareDatabase(database, config, logger, clock);
    undo.push(() => keys.stop());
    const metrics = createMetrics();
    const query = preparedStatements(database, (statement, seconds, batchSize) => {
      metrics.statementDuration.observe({ statement }, seconds);
      metrics.statementBatchSize.observe({ statement }, batchSize);
    });
    const refusals = new UsageRefusals(database.knex, clock);
    const stopRefusals = refusals.start((error) => logger.warn({ err: error }, 'could not store usage refusal counts; retrying'));
    undo.push(stopRefusals);
    const tokens = new AccessTokens(query, keys, config, clock, {
      onIssued: (grantType) => metrics.tokensIssued.inc({ grant_type: grantType }),
      onQuotaExceeded: (grantType) => metrics.quotaRefusals.inc({ grant_type: grantType }),
      onRefused: (orgId, reason) => refusals.record(orgId, reason),
    });
    const clients = new ClientDirectory(query);
    const githubJwks = new GitHubJwksCache({ issuer: config.githubOidcIssuer, now: () => clock.now() });
    // Outbound requests (partners' keys, webhooks) pass the egress guard; tests may resolve names themselves.
    const egress = createEgressFetch({ allowCidrs: config.egressAllowCidrs, ...(options.resolve && { resolve: options.resolve }) });
    const deps: AppDeps = { config, knex: database.knex, logger, keys, tokens, clients, metrics, githubJwks, query, clock, refusals, egress, keyRing };
    const stopMaintenance = startMaintenance(database.knex, logger, clock, config.tokenTtlSeconds, {
      digests: { sign: (typ, payload) => keys.signDocument(typ, payload), intervalSeconds: config.auditDigestIntervalSeconds },
      isEmbedded: database.isEmbedded,
    });
    undo.push(stopMaintenance);
    const stopWebhooks = new WebhookWorker({
      knex: database.knex,
      egress,
      keyRing,
      clock,
      logger,
      metrics,
      retryScheduleSeconds: config.webhookRetryScheduleSeconds,
      timeoutMs: config.webhookTimeoutSeconds * 1000,
    }).start();
    undo.push(stopWebhooks);

    // On the embedded database, CLI commands on this DATA_DIR are run here (cli/operator-socket.ts).
    let operatorSocket: OperatorSocket | undefined;
    if (dataDirLock) {
      operatorSocket = await serveOperatorSocket(config.dataDir, async (request) => {
        const reply = await runForwardedCommand(request, config, database, { clock, keyRing });
        logger.info({ command: request.argv.slice(0, 2).join(' '), exitCode: reply.exitCode }, 'operator command');
        return reply;
      });
      undo.push(operatorSocket.close);
      dataDirLock.announce({ socket: operatorSocket.path });
    }

    const lifecycle: Lifecycle = { draining: false };
    handleRequest = createApp(deps, lifecycle).callback();
    dataDirLock?.announce({ port });
    if (generatedAdmin) options.announceGeneratedAdmin?.(generatedAdmin);
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    logger.info({ port, host: config.host, database: database.isEmbedded ? 'embedded' : 'postgres', alg: config.signingAlg }, options.listeningMessage ?? 'listening');
    logger.flush();

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        // A command started from now on waits for DATA_DIR instead of trying the closing socket.
        dataDirLock?.announce({ socket: undefined });
        await Promise.all([drain(httpServer, lifecycle, options.idleGraceMs ?? IDLE_GRACE_MS), operatorSocket?.close()]);
        keys.stop();
        await stopRefusals();
        await stopWebhooks();
        await stopMaintenance();
        if (ownsDatabase) await database.close();
        dataDirLock?.release();
        logger.flush();
      })());
    return { url: `http://${host}:${port}`, port, deps, database, generatedAdmin, httpServer, close };
  } catch (error) {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => undefined);
    throw error;
  }
}

/** How long a keep-alive connection that was idle when shutdown began may still send one last request. */
const IDLE_GRACE_MS = 1_000;
/** After this, connections still open (a stalled upload) are cut so that the process can exit. */
const DRAIN_DEADLINE_MS = 10_000;

/**
 * Stops accepting connections and lets every accepted request finish. Each answer from now
 * on carries `Connection: close`, so busy keep-alive clients close their sockets themselves
 * instead of having them cut under their next request (Node's `close()` would cut idle
 * sockets at once, racing a request already on the wire). Sockets still idle after a grace
 * period are closed; anything left at the deadline is cut.
 */
async function drain(httpServer: http.Server, lifecycle: Lifecycle, idleGraceMs: number): Promise<void> {
  lifecycle.draining = true;
  const closed = new Promise<void>((resolve) => net.Server.prototype.close.call(httpServer, () => resolve()));
  const grace = setTimeout(() => httpServer.closeIdleConnections(), idleGraceMs);
  const deadline = setTimeout(() => httpServer.closeAllConnections(), DRAIN_DEADLINE_MS);
  try {
    await closed;
  } finally {
    clearTimeout(grace);
    clearTimeout(deadline);
  }
}

/**
 * A request Node's HTTP parser refuses (bad bytes, an unknown method, oversized headers)
 * never reaches the app; answer it in the documented error shape rather than Node's bare
 * status line, then close the connection: the parser cannot resynchronise on it.
 */
function answerUnparsableRequest(error: NodeJS.ErrnoException, socket: import('node:stream').Duplex): void {
  if (!socket.writable || (error.code === 'ECONNRESET' && !socket.readable)) return void socket.destroy();
  const [status, reason, message] =
    error.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', 'The request headers are too large.']
      : error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', 'The request was not received in time.']
        : [400, 'Bad Request', 'The request could not be parsed as HTTP/1.1.'];
  // An answer to HEAD carries no body (RFC 9110 §9.3.2), even a refusal.
  const isHead = (error as { rawPacket?: Buffer }).rawPacket?.subarray(0, 5).toString('latin1') === 'HEAD ';
  const body = isHead ? '' : JSON.stringify({ code: 'VALIDATION_ERROR', message });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
  );
}
