/**
 * The webhook worker, on every instance: every tick it fans out new audit events, then
 * takes due deliveries (up to `concurrency` in flight) and attempts each through the egress
 * guard: a POST of the thin payload with the Standard Webhooks headers, signed afresh at
 * each attempt (`webhook-timestamp` is the attempt's time; `webhook-id` is the event's).
 * Success is a 2xx only. Otherwise the next attempt follows the schedule (immediately, 5 s,
 * 5 min, 30 min, 2 h, 5 h, 10 h, 10 h by default, each ±10%), or a 429's or 503's
 * `Retry-After` when that is later; a 410 disables the endpoint at once, and so do five days
 * of failures without a success. At least once, unordered: a crash between an attempt and its
 * record means one more attempt when the lease ends.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { EgressFailed, EgressRefused, type EgressFetch } from '../egress/egress-guard.js';
import type { Metrics } from '../http/observability.js';
import { SigningKeyUnavailable, type KeyRing } from '../keys/key-encryption.js';
import { claimDue, fanOut, PER_ENDPOINT, queueStats, recordAttempt, type AttemptRecord, type AttemptVerdict, type ClaimedDelivery } from './webhook-queue.js';
import { openSecret, signatureHeader } from './webhook-secrets.js';

export const DEFAULT_RETRY_SCHEDULE_SECONDS: readonly number[] = [0, 5, 300, 1_800, 7_200, 18_000, 36_000, 36_000];
export const DISABLE_AFTER_MS = 5 * 86_400_000;
const TIMEOUT_MS = 15_000;
const MAX_RETRY_AFTER_SECONDS = 86_400;
const STATS_INTERVAL_MS = 5_000;
const FAN_OUT_BATCH = 500;

export interface WebhookWorkerOptions {
  readonly knex: Knex;
  readonly egress: Pick<EgressFetch, 'post'>;
  readonly keyRing: KeyRing;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Seconds before each attempt, the first included (WEBHOOK_RETRY_SCHEDULE_SECONDS). */
  readonly retryScheduleSeconds?: readonly number[];
  readonly timeoutMs?: number;
  readonly concurrency?: number;
  readonly pollIntervalMs?: number;
  readonly disableAfterMs?: number;
  /** 0..1, for the ±10% jitter; tests pass a fixed one. */
  readonly random?: () => number;
}

export class WebhookWorker {
  private readonly inFlight = new Set<Promise<void>>();
  /** Attempts in flight on this instance, by endpoint. */
  private readonly inFlightByEndpoint = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private lastStatsMs = Number.NEGATIVE_INFINITY;
  private stopped = false;

  constructor(private readonly options: WebhookWorkerOptions) {}

  private get schedule(): readonly number[] {
    return this.options.retryScheduleSeconds ?? DEFAULT_RETRY_SCHEDULE_SECONDS;
  }

  /** Ticks every poll interval until the returned stop, which waits for the attempts in flight. */
  start(): () => Promise<void> {
    const interval = this.options.pollIntervalMs ?? 250;
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((error: unknown) => this.options.logger.warn({ err: error }, 'webhook worker tick failed; retrying'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, interval).unref();
        });
    };
    this.timer = setTimeout(loop, 0).unref();
    return async () => {
      this.stopped = true;
      clearTimeout(this.timer);
      await this.ticking;
      await Promise.allSettled([...this.inFlight]);
    };
  }

  /** One pass: fan out, refresh the gauges now and then, take what is due and attempt it. */
  async tick(): Promise<void> {
    const { knex, clock } = this.options;
    const firstDelayMs = (this.schedule[0] ?? 0) * 1000;
    // A backlog is fanned out batch after batch; a partial batch means caught up until the next tick
    // (looping while anything at all was examined would spin on a busy server's stream of events).
    while ((await fanOut(knex, clock.now(), { firstDelayMs, batch: FAN_OUT_BATCH })).examined === FAN_OUT_BATCH) {
      // the next batch
    }
    const nowMs = clock.now();
    if (this.options.metrics && nowMs - this.lastStatsMs >= STATS_INTERVAL_MS) {
      this.lastStatsMs = nowMs;
      const stats = await queueStats(knex, nowMs);
      this.options.metrics.webhookQueueDepth.set(stats.depth);
      this.options.metrics.webhookOldestDueSeconds.set(stats.oldestDueSeconds);
    }
    const room = (this.options.concurrency ?? 16) - this.inFlight.size;
    if (room <= 0) return;
    const timeoutMs = this.options.timeoutMs ?? TIMEOUT_MS;
    // Leased for twice an attempt's timeout: due again that long after a worker that died took it.
    const saturated = [...this.inFlightByEndpoint].filter(([, count]) => count >= PER_ENDPOINT).map(([endpointId]) => endpointId);
    const claimed = await claimDue(knex, nowMs, nowMs + 2 * timeoutMs, room, saturated);
    for (const delivery of claimed) {
      const { endpointId } = delivery;
      this.inFlightByEndpoint.set(endpointId, (this.inFlightByEndpoint.get(endpointId) ?? 0) + 1);
      const attempt = this.attempt(delivery)
        .catch((error: unknown) =>
          this.options.logger.warn({ err: { message: (error as Error).message }, deliveryId: delivery.deliveryId }, 'could not record a webhook attempt; it is due again when its lease ends'),
        )
        .finally(() => {
          const left = (this.inFlightByEndpoint.get(endpointId) ?? 1) - 1;
          if (left > 0) this.inFlightByEndpoint.set(endpointId, left);
          else this.inFlightByEndpoint.delete(endpointId);
        });
      this.inFlight.add(attempt);
      void attempt.finally(() => this.inFlight.delete(attempt));
    }
  }

  /** Waits for the attempts in flight (tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.inFlight]);
  }

  private async attempt(delivery: ClaimedDelivery): Promise<void> {
    const { clock } = this.options;
    const attemptedAtMs = clock.now();
    const started = performance.now();
    let record: AttemptRecord;
    let retryAfterSeconds: number | undefined;
    try {
      const response = await this.options.egress.post(delivery.url, {
        headers: this.headersOf(delivery, attemptedAtMs),
        body: delivery.body,
        timeoutMs: this.options.timeoutMs ?? TIMEOUT_MS,
      });
      record = { attemptedAtMs, statusCode: response.status, durationMs: response.durationMs, responseBody: response.bodyPrefix, error: null };
      if (response.status === 429 || response.status === 503) retryAfterSeconds = parseRetryAfter(response.headers['retry-after'], attemptedAtMs);
    } catch (error) {
      record = { attemptedAtMs, statusCode: null, durationMs: performance.now() - started, responseBody: '', error: attemptError(error) };
    }
    const verdict = this.verdictOf(delivery.attempt, record.statusCode, retryAfterSeconds);
    const disabled = await recordAttempt(this.options.knex, delivery, record, verdict, { nowMs: clock.now(), disableAfterMs: this.options.disableAfterMs ?? DISABLE_AFTER_MS });
    this.options.metrics?.webhookDeliveries.inc({ outcome: verdict.kind === 'retry' ? 'retrying' : verdict.kind });
    if (disabled) this.options.logger.warn({ webhookId: delivery.endpointId, reason: disabled }, 'webhook endpoint disabled');
  }

  /** Standard Webhooks headers, signed now with the secret (and the previous one in its grace period). */
  private headersOf(delivery: ClaimedDelivery, attemptedAtMs: number): Record<string, string> {
    const { keyRing } = this.options;
    const timestamp = Math.floor(attemptedAtMs / 1000);
    const secrets = [openSecret(keyRing, delivery.endpointId, delivery.secret)];
    if (delivery.previousSecret && delivery.previousSecret.expiresAtMs > attemptedAtMs) secrets.push(openSecret(keyRing, delivery.endpointId, delivery.previousSecret));
    return {
      'content-type': 'application/json',
      'user-agent': 'SentryAgent-IdP-Webhooks/1',
      'webhook-id': delivery.messageId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signatureHeader(secrets, delivery.messageId, timestamp, delivery.body),
    };
  }

  private verdictOf(attempt: number, statusCode: number | null, retryAfterSeconds: number | undefined): AttemptVerdict {
    if (statusCode !== null && statusCode >= 200 && statusCode < 300) return { kind: 'succeeded' };
    if (statusCode === 410) return { kind: 'gone' };
    const delaySeconds = this.schedule[attempt];
    if (delaySeconds === undefined) return { kind: 'failed' };
    const jitter = 0.9 + 0.2 * (this.options.random ?? Math.random)();
    const waitMs = Math.max(delaySeconds * 1000 * jitter, (retryAfterSeconds ?? 0) * 1000);
    return { kind: 'retry', atMs: this.options.clock.now() + waitMs };
  }
}

/**
 * What the history says of an attempt that got no answer. The guard's messages name the URL
 * without its query and quote nothing the receiver sent; an address refusal says only that
 * (which internal address a name resolves to is not for a tenant to learn).
 */
function attemptError(error: unknown): string {
  if (error instanceof EgressRefused) return error.reason === 'address' ? 'refused: the host resolves to an address that is not allowed (loopback, private, link-local or reserved)' : error.message;
  if (error instanceof EgressFailed) return error.message;
  if (error instanceof SigningKeyUnavailable) return "the endpoint's signing secret cannot be decrypted with this server's key-encryption keys";
  throw error;
}

/** RFC 9110 §10.2.3: seconds, or an HTTP date; bounded to a day. */
export function parseRetryAfter(value: string | string[] | undefined, nowMs: number): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (!text) return undefined;
  const seconds = /^\d+$/.test(text.trim()) ? Number(text.trim()) : (Date.parse(text) - nowMs) / 1000;
  if (!Number.isFinite(seconds) || seconds < 0) return undefined;
  return Math.min(seconds, MAX_RETRY_AFTER_SECONDS);
}
