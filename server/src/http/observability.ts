/** Structured request logs, Prometheus metrics, health and readiness. */
import crypto from 'node:crypto';
import Router from '@koa/router';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import client from 'prom-client';
import { ServiceError, ServiceUnavailable } from '../errors.js';

export interface Metrics {
  readonly registry: client.Registry;
  readonly requests: client.Counter<'method' | 'route' | 'status'>;
  readonly duration: client.Histogram<'method' | 'route' | 'status'>;
  readonly tokensIssued: client.Counter<'grant_type'>;
  readonly oidcUnverifiedRefusals: client.Counter<'endpoint' | 'reason'>;
  readonly oidcRefusals: client.Counter<'endpoint' | 'reason'>;
  readonly rateLimited: client.Counter<'route'>;
  readonly quotaRefusals: client.Counter<'grant_type'>;
  readonly webhookDeliveries: client.Counter<'outcome'>;
  readonly webhookQueueDepth: client.Gauge;
  readonly webhookOldestDueSeconds: client.Gauge;
  readonly statementDuration: client.Histogram<'statement'>;
  readonly statementBatchSize: client.Histogram<'statement'>;
}

export function createMetrics(): Metrics {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry });
  return {
    registry,
    requests: new client.Counter({
      name: 'http_requests_total',
      help: 'HTTP requests by method, route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    // The hot paths' statements (storage/prepared.ts), by their fixed names: the round trip a
    // grant, an exchange or an introspection waits on, and how many requests shared it.
    statementDuration: new client.Histogram({
      name: 'sentryagent_db_statement_duration_seconds',
      help: 'Hot-path database statements, from asking the pool for a connection to the result, by statement',
      labelNames: ['statement'],
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
      registers: [registry],
    }),
    statementBatchSize: new client.Histogram({
      name: 'sentryagent_db_statement_batch_size',
      help: 'Requests served by one hot-path database statement, by statement',
      labelNames: ['statement'],
      buckets: [1, 2, 5, 10, 20, 50, 100],
      registers: [registry],
    }),
    duration: new client.Histogram({
      name: 'http_request_duration_seconds',
      help: 'HTTP request duration by method, route and status',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    tokensIssued: new client.Counter({
      name: 'sentryagent_tokens_issued_total',
      help: 'Access tokens issued, by grant type',
      labelNames: ['grant_type'],
      registers: [registry],
    }),
    oidcUnverifiedRefusals: new client.Counter({
      name: 'sentryagent_oidc_unverified_refusals_total',
      help: 'GitHub ID tokens refused before their signature was verified, by endpoint and reason',
      labelNames: ['endpoint', 'reason'],
      registers: [registry],
    }),
    oidcRefusals: new client.Counter({
      name: 'sentryagent_oidc_refusals_total',
      help: 'GitHub exchanges and registrations refused, by endpoint and reason',
      labelNames: ['endpoint', 'reason'],
      registers: [registry],
    }),
    rateLimited: new client.Counter({
      name: 'sentryagent_rate_limited_total',
      help: 'Requests refused with 429 by a rate limit, by route',
      labelNames: ['route'],
      registers: [registry],
    }),
    quotaRefusals: new client.Counter({
      name: 'sentryagent_quota_refusals_total',
      help: 'Token grants refused because the monthly quota is spent, by grant type',
      labelNames: ['grant_type'],
      registers: [registry],
    }),
    webhookDeliveries: new client.Counter({
      name: 'sentryagent_webhook_deliveries_total',
      help: 'Webhook delivery attempts by outcome: succeeded, retrying, failed (its schedule ended), gone (410: endpoint disabled)',
      labelNames: ['outcome'],
      registers: [registry],
    }),
    webhookQueueDepth: new client.Gauge({
      name: 'sentryagent_webhook_queue_depth',
      help: 'Webhook deliveries waiting for an attempt (all instances; refreshed every few seconds)',
      registers: [registry],
    }),
    webhookOldestDueSeconds: new client.Gauge({
      name: 'sentryagent_webhook_oldest_due_seconds',
      help: 'How long the longest-due webhook delivery has been due (0: none due)',
      registers: [registry],
    }),
  };
}

/**
 * One JSON log line per request: never headers, query strings or bodies. The line is built
 * here from fixed fields only, so it skips the logger's redaction pass (a cost on every
 * request); anything else logged goes through it as before.
 */
export function observeRequests(logger: Logger, metrics: Metrics) {
  const accessLog = logger.child({}, { redact: [] });
  // Labelled children, looked up by key instead of hashing label objects on every request.
  const counters = new Map<string, { inc(): void }>();
  const timers = new Map<string, { observe(seconds: number): void }>();
  return async function observeRequestsMiddleware(ctx: Context, next: Next): Promise<void> {
    const startedAt = process.hrtime.bigint();
    const incoming = ctx.get('X-Request-Id');
    const requestId = /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
    } finally {
      const seconds = Number(process.hrtime.bigint() - startedAt) / 1e9;
      // The matched route pattern, not the path: ids must not become label values.
      const route = (ctx as Context & { _matchedRoute?: string })._matchedRoute ?? 'unmatched';
      const { method, status } = ctx;
      const counterKey = `${method} ${route} ${status}`;
      let counter = counters.get(counterKey);
      if (!counter) counters.set(counterKey, (counter = metrics.requests.labels(method, route, String(status))));
      let timer = timers.get(counterKey);
      if (!timer) timers.set(counterKey, (timer = metrics.duration.labels(method, route, String(status))));
      counter.inc();
      timer.observe(seconds);
      if (status === 429) metrics.rateLimited.inc({ route });
      const line = { requestId, method, route, status, durationMs: Math.round(seconds * 1e4) / 10 };
      if (status >= 500) accessLog.error(line, 'request');
      else accessLog.info(line, 'request');
    }
  };
}

/** `isReady` resolves when the database answers. */
export function observabilityRoutes(isReady: () => Promise<void>, metrics: Metrics): Router {
  const router = new Router();
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', async (ctx) => {
    try {
      await isReady();
    } catch {
      throw new ServiceUnavailable();
    }
    ctx.body = { status: 'ok' };
  });
  router.get('/metrics', async (ctx) => {
    ctx.type = metrics.registry.contentType;
    ctx.body = await metrics.registry.metrics();
  });
  return router;
}

/**
 * Counts the refusals of a GitHub endpoint by a fixed reason: the OAuth error code, with
 * access_denied told apart by its two answers (CONTRACT.md, "Trust policies").
 */
export function countingRefusals(counter: Metrics['oidcRefusals'], endpoint: string, handler: (ctx: Context) => Promise<void>) {
  return async function countRefusals(ctx: Context): Promise<void> {
    try {
      await handler(ctx);
    } catch (error) {
      if (error instanceof ServiceError && error.status < 500) counter.inc({ endpoint, reason: refusalReason(error) });
      throw error;
    }
  };
}

function refusalReason(error: ServiceError): string {
  if (error.status === 429) return 'rate_limited';
  if (error.oauthCode === 'access_denied') return error.message === 'Branch not permitted' ? 'branch_not_permitted' : 'trust_policy_violation';
  return error.oauthCode ?? error.code.toLowerCase();
}
