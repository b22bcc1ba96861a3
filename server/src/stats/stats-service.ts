/**
 * An organization's token traffic for the admin console (audit:read): grants per hour and
 * refusals by reason over the last 24 hours (from the audit log, since access_tokens rows
 * are pruned after expiry), this month's refused grants (usage_refusals) and the live tokens
 * now. A caller reads its own organization; a platform caller with admin:orgs, any.
 */
import type { Knex } from 'knex';
import { requireScope, type Caller } from '../authorization/caller.js';
import type { Clock } from '../clock.js';
import { organizationFor } from '../tenancy/organization-scope.js';
import { readMonthlyRefusals } from '../tenancy/organization-store.js';
import { countIssuedPerHour, countLiveTokens, countRefusalsByReason, type RefusalGroup } from './stats-store.js';

const HOUR_MS = 3_600_000;
const HOURS = 24;

export interface TokenStats {
  readonly orgId: string;
  readonly generatedAt: string;
  /** The start of the oldest hour counted. */
  readonly since: string;
  /** Oldest first, the current (partial) hour last; hours without grants count 0. */
  readonly tokensIssuedPerHour: { hour: string; count: number }[];
  readonly refusalsByReason: RefusalGroup[];
  /** The calendar month (UTC) of monthlyRefusals, e.g. 2026-12. */
  readonly month: string;
  /** Grants refused this month (rate_limited, org_monthly_limit, …), most frequent first. */
  readonly monthlyRefusals: { reason: string; count: number }[];
  readonly liveTokens: number;
}

export interface StatsServiceDeps {
  readonly knex: Knex;
  readonly clock: Clock;
  /** Writes the refusals this instance counted but has not stored yet, so that monthlyRefusals includes them. */
  readonly flushRefusals?: () => Promise<void>;
}

export class StatsService {
  constructor(private readonly deps: StatsServiceDeps) {}

  async read(caller: Caller, requestedOrgId?: string): Promise<TokenStats> {
    requireScope(caller, 'audit:read');
    const { knex, clock } = this.deps;
    const org = await organizationFor(knex, caller, requestedOrgId);
    await this.deps.flushRefusals?.();
    const nowMs = clock.now();
    const currentHourMs = Math.floor(nowMs / HOUR_MS) * HOUR_MS;
    const window = { from: new Date(currentHourMs - (HOURS - 1) * HOUR_MS), until: new Date(currentHourMs + HOUR_MS) };
    const scope = { orgId: org.orgId, isPlatform: org.isPlatform };
    const month = new Date(nowMs).toISOString().slice(0, 7);
    const [issued, refusals, monthly, liveTokens] = await Promise.all([
      countIssuedPerHour(knex, scope, window),
      countRefusalsByReason(knex, scope, window),
      readMonthlyRefusals(knex, org.orgId, month),
      countLiveTokens(knex, org.orgId, new Date(nowMs)),
    ]);
    return {
      orgId: org.orgId,
      generatedAt: new Date(nowMs).toISOString(),
      since: window.from.toISOString(),
      tokensIssuedPerHour: Array.from({ length: HOURS }, (_, i) => {
        const hourMs = window.from.getTime() + i * HOUR_MS;
        return { hour: new Date(hourMs).toISOString(), count: issued.get(hourMs) ?? 0 };
      }),
      refusalsByReason: refusals,
      month,
      monthlyRefusals: Object.entries(monthly)
        .map(([reason, count]) => ({ reason, count }))
        .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
      liveTokens,
    };
  }
}
