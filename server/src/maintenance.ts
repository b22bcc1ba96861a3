/**
 * Background work, on every instance, each job under a try-advisory-lock so that one
 * instance does it at a time: linking the audit chain (often, in small batches),
 * summarizing the minute's unverified ID-token refusals into the audit log, and
 * pruning rows that can no longer matter (past rate-limit windows, GitHub jtis of
 * expired ID tokens, access tokens an hour past expiry, signing keys retired or revoked
 * longer ago than any token they signed can live, webhook deliveries finished 30 days ago),
 * and on the embedded database, which has no autovacuum, summarising the audit log's new
 * BRIN ranges.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { linkBacklog } from './audit/audit-chain.js';
import { summarizeAuditRanges } from './audit/audit-log.js';
import { emitAuditDigest, type SignDocument } from './audit/audit-digests.js';
import type { Clock } from './clock.js';
import { summarizeUnverifiedRefusals } from './github/unverified-refusals.js';
import { pruneUsedJtis } from './github/used-jti-store.js';
import { purgeRetiredKeys } from './keys/signing-key-store.js';
import { publicationWindowSeconds } from './keys/signing-keys.js';
import { pruneRateWindows } from './oauth/rate-limit-store.js';
import { pruneExpiredTokens } from './oauth/token-store.js';
import { isDatabaseUnavailable } from './storage/database.js';
import { pruneWebhookHistory, queuePlatformEvent } from './webhooks/webhook-queue.js';

const AUDIT_LINK_INTERVAL_MS = 250;
const PRUNE_INTERVAL_MS = 60_000;
const PRUNE_LOCK = 7_242_005;
// Digests are due every AUDIT_DIGEST_INTERVAL_SECONDS; whether one is due is checked this often.
const DIGEST_CHECK_INTERVAL_MS = 60_000;
const DIGEST_SLACK_MS = 1_000;

export async function pruneExpiredRows(knex: Knex, clock: Clock, tokenTtlSeconds: number): Promise<void> {
  await knex.transaction(async (trx) => {
    const result = await trx.raw('select pg_try_advisory_xact_lock(?) as locked', [PRUNE_LOCK]);
    if (!result.rows[0].locked) return;
    const nowMs = clock.now();
    await summarizeUnverifiedRefusals(trx, nowMs);
    await pruneRateWindows(trx, nowMs);
    await pruneUsedJtis(trx, nowMs);
    await pruneExpiredTokens(trx, nowMs);
    await purgeRetiredKeys(trx, new Date(nowMs - publicationWindowSeconds(tokenTtlSeconds) * 1000));
    await pruneWebhookHistory(trx, nowMs);
  });
}

export interface DigestOptions {
  readonly sign: SignDocument;
  readonly intervalSeconds: number;
}

/**
 * One signed digest of the audit chain per interval (audit/audit-digests.ts), on whichever
 * instance gets there first; it goes to the database and to the log, where it can be kept
 * apart from the database. A chain that no longer holds the last digest's head gets no new
 * digest, and an error in the log.
 */
export async function emitDigest(knex: Knex, logger: Logger, clock: Clock, options: DigestOptions): Promise<void> {
  const emitted = await emitAuditDigest(knex, options.sign, clock, options.intervalSeconds * 1000 - DIGEST_SLACK_MS);
  if (emitted === 'refused') {
    logger.error('audit chain no longer holds the head of the last signed digest: no new digest; run `sentryagent-idp audit verify`');
    await tellChainBroken(knex, clock);
  } else if (emitted) {
    const { digest, jws } = emitted;
    logger.info({ digest: jws, digestSeq: digest.seq, lastSeq: digest.lastSeq, headHash: digest.headHash }, 'audit digest');
  }
}

/**
 * `audit.chain_broken`, a webhook event of the platform organization, once per signed digest
 * whose head the chain lost (the check repeats every minute; the event's id is the digest's).
 * It is not appended to the audit log: the next event would take the place of the deleted
 * ones and blur what a verifier reports.
 */
async function tellChainBroken(knex: Knex, clock: Clock): Promise<void> {
  const [last] = await knex('audit_digests').orderBy('seq', 'desc').limit(1).select('seq');
  if (!last) return;
  const digestSeq = String(last.seq);
  await queuePlatformEvent(knex, {
    type: 'audit.chain_broken',
    messageId: `msg_chain_broken_${digestSeq}`,
    data: { digestSeq, reason: 'the chain no longer holds the head of the last signed digest' },
    nowMs: clock.now(),
  });
}

export interface MaintenanceOptions {
  readonly digests?: DigestOptions;
  /** The embedded database, which has no autovacuum: the audit log's BRIN ranges are summarised here. */
  readonly isEmbedded?: boolean;
}

export function startMaintenance(knex: Knex, logger: Logger, clock: Clock, tokenTtlSeconds: number, options: MaintenanceOptions = {}): () => Promise<void> {
  const { digests } = options;
  let isStopped = false;
  const running = new Map<string, Promise<void>>();
  const guard = (job: string, work: () => Promise<unknown>) => () => {
    // A pass still running (a long backlog, a slow database) is not joined by another.
    if (isStopped || running.has(job)) return;
    const pass = work()
      .then(() => undefined)
      .catch((error: unknown) => {
        if (!isDatabaseUnavailable(error)) logger.error({ job, err: { message: (error as Error).message } }, 'maintenance job failed');
      })
      .finally(() => running.delete(job));
    running.set(job, pass);
  };
  const link = setInterval(guard('audit-link', () => linkBacklog(knex, { shouldStop: () => isStopped })), AUDIT_LINK_INTERVAL_MS);
  const prune = setInterval(guard('prune', () => pruneExpiredRows(knex, clock, tokenTtlSeconds)), PRUNE_INTERVAL_MS);
  const timers = [link, prune];
  if (options.isEmbedded) timers.push(setInterval(guard('audit-ranges', () => summarizeAuditRanges(knex)), PRUNE_INTERVAL_MS));
  if (digests) {
    const digest = guard('audit-digest', () => emitDigest(knex, logger, clock, digests));
    timers.push(setInterval(digest, Math.min(digests.intervalSeconds * 1000, DIGEST_CHECK_INTERVAL_MS)));
  }
  for (const timer of timers) timer.unref();
  return async () => {
    isStopped = true;
    for (const timer of timers) clearInterval(timer);
    await Promise.all(running.values());
  };
}
