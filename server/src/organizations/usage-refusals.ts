/**
 * Refused grants per organization, month and reason, for `GET /orgs/{id}/usage`. Refusals
 * can come in floods (a client past its rate limit), so they are summed in memory and
 * written in one statement every few seconds, at shutdown, and before this instance
 * answers a usage request; another instance's last few seconds may not be in that answer
 * yet. The limits themselves never depend on these counts (issue_grants decides them). The
 * month's first refusal of an organization for a monthly limit is also an audit event,
 * `quota.reached` (a webhook event), written by whichever instance stores it first.
 */
import type { Knex } from 'knex';
import { appendAuditEvent } from '../audit/audit-log.js';
import type { Clock } from '../clock.js';
import type { GrantRefusalReason } from '../oauth/access-tokens.js';
import { addUsageRefusals } from '../tenancy/organization-store.js';

export const REFUSAL_FLUSH_INTERVAL_MS = 5_000;
const MONTHLY_LIMITS: ReadonlySet<string> = new Set<GrantRefusalReason>(['agent_monthly_limit', 'org_monthly_limit']);

export class UsageRefusals {
  private pending = new Map<string, number>();
  private flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly knex: Knex,
    private readonly clock: Clock,
  ) {}

  record(orgId: string, reason: GrantRefusalReason): void {
    const key = `${orgId} ${new Date(this.clock.now()).toISOString().slice(0, 7)} ${reason}`;
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
  }

  /** Writes what was counted so far; a failed write keeps the counts for the next one. */
  flush(): Promise<void> {
    this.flushing = this.flushing.then(async () => {
      if (this.pending.size === 0) return;
      const batch = this.pending;
      this.pending = new Map();
      const rows = [...batch].map(([key, count]) => {
        const [orgId, month, reason] = key.split(' ') as [string, string, string];
        return [orgId, month, reason, count] as const;
      });
      try {
        await this.knex.transaction(async (trx) => {
          const firsts = await addUsageRefusals(trx, rows);
          // The month's first refusal for a monthly limit: `quota.reached`, for its webhooks.
          for (const { orgId, month, reason } of firsts.filter((first) => MONTHLY_LIMITS.has(first.reason))) {
            await appendAuditEvent(trx, { type: 'quota.reached', orgId, actor: 'system', data: { reason, month } });
          }
        });
      } catch (error) {
        for (const [key, count] of batch) this.pending.set(key, (this.pending.get(key) ?? 0) + count);
        throw error;
      }
    });
    return this.flushing;
  }

  /** Flushes every REFUSAL_FLUSH_INTERVAL_MS until the returned stop, which flushes once more. */
  start(onError: (error: unknown) => void): () => Promise<void> {
    const timer = setInterval(() => this.flush().catch(onError), REFUSAL_FLUSH_INTERVAL_MS);
    timer.unref();
    return async () => {
      clearInterval(timer);
      await this.flush().catch(onError);
    };
  }
}
