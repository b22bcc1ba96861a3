/** The overview: tokens granted per hour, refusals by reason, the month's usage against its limit, the audit chain's state. */
import { barList, columnChart, usageMeter } from '../charts.js';
import { h } from '../dom.js';
import { segment } from '../api.js';
import { session } from '../session.js';
import { call, errorRegion, has, heading, section } from '../ui.js';
import { chainBadge } from './audit.js';

interface Stats {
  orgId: string;
  tokensIssuedPerHour: { hour: string; count: number }[];
  refusalsByReason: { type: string; reason: string | null; count: number }[];
  monthlyRefusals: { reason: string; count: number }[];
  liveTokens: number;
}

interface Usage {
  month: string;
  tokens: { granted: number; limit: number | null };
  agents: { count: number; limit: number | null };
}

async function trafficSection(): Promise<HTMLElement> {
  const errors = errorRegion();
  const body = h('div', {});
  try {
    const stats = await call<Stats>('GET', '/api/v1/stats');
    body.append(
      h('p', {}, `Live tokens now: ${stats.liveTokens.toLocaleString('en-US')}`),
      columnChart('Tokens granted per hour, last 24 hours', stats.tokensIssuedPerHour.map((bucket) => ({ label: bucket.hour.slice(11, 16), value: bucket.count })), 'tokens'),
      barList('Refusals by reason, last 24 hours', stats.refusalsByReason.map((row) => ({ label: `${row.reason ?? 'no reason recorded'} (${row.type})`, value: row.count })), 'No refusals in the last 24 hours.'),
      barList('Refused grants this month', stats.monthlyRefusals.map((row) => ({ label: row.reason, value: row.count })), 'No refused grants this month.'),
    );
  } catch (error) {
    errors.show(error);
  }
  return section('Token traffic', errors, body);
}

async function usageSection(orgId: string): Promise<HTMLElement> {
  const errors = errorRegion();
  const body = h('div', {});
  try {
    const usage = await call<Usage>('GET', `/api/v1/orgs/${segment(orgId)}/usage`);
    body.append(usageMeter(`Tokens granted in ${usage.month}`, usage.tokens.granted, usage.tokens.limit), usageMeter('Agents', usage.agents.count, usage.agents.limit));
  } catch (error) {
    errors.show(error);
  }
  return section('Monthly usage', errors, body);
}

export async function overviewPage(main: HTMLElement): Promise<void> {
  const signedIn = session()!;
  main.append(
    heading('Overview'),
    h('p', {}, `Organization ${signedIn.claims.org_id || '(none named)'} · scopes: ${[...signedIn.scopes].join(', ') || 'none'}`),
  );
  const sections = await Promise.all([
    has('agents:read') || has('admin:orgs') ? usageSection(signedIn.claims.org_id) : null,
    has('audit:read') ? trafficSection() : null,
    has('audit:read') ? chainBadge().then((badge) => section('Audit log', badge)) : null,
  ]);
  for (const part of sections) if (part) main.append(part);
  if (!sections.some(Boolean)) main.append(h('p', {}, 'This token holds none of the scopes the overview reads (agents:read, audit:read).'));
}
