/** Appending to and reading the audit log. Nothing secret is ever put in `data`. */
import type { Knex } from 'knex';
import { linkAllPendingEvents } from './audit-chain.js';

export type AuditEventType =
  | 'bootstrap.admin_created'
  | 'agent.created'
  | 'agent.updated'
  | 'agent.suspended'
  | 'agent.reactivated'
  | 'agent.decommissioned'
  | 'agent.registered'
  | 'credential.created'
  | 'credential.revoked'
  | 'token.issued'
  | 'token.revoked'
  | 'trust_policy.created'
  | 'trust_policy.deleted'
  | 'trust_policy.bound'
  | 'oidc.exchange.granted'
  | 'oidc.exchange.refused'
  | 'oidc.register.refused'
  | 'oidc.unverified_refused'
  | 'signing_key.rotated'
  | 'signing_key.rewrapped'
  | 'signing_key.revoked'
  | 'org.created'
  | 'org.updated'
  | 'org.suspended'
  | 'org.reactivated'
  | 'org.decommissioned'
  | 'federation.partner.created'
  | 'federation.partner.updated'
  | 'federation.partner.suspended'
  | 'federation.partner.reactivated'
  | 'federation.partner.deleted'
  | 'federation.binding.created'
  | 'federation.binding.deleted'
  | 'federation.exchange.granted'
  | 'federation.exchange.refused'
  | 'quota.reached'
  | 'webhook.created'
  | 'webhook.updated'
  | 'webhook.deleted'
  | 'webhook.secret_rotated'
  | 'webhook.secrets_resealed'
  | 'webhook.test'
  | 'webhook.redelivered'
  | 'webhook.recovered'
  | 'webhook.endpoint_disabled';

export interface NewAuditEvent {
  readonly type: AuditEventType;
  readonly agentId?: string | null;
  /** The organization it belongs to; by default its agent's, and without an agent the platform's. */
  readonly orgId?: string;
  /** Who acted: `agent:<id>`, `github:<owner/repo>`, `operator`, `system`. */
  readonly actor: string;
  readonly data?: Record<string, unknown>;
}

export interface AuditEvent {
  readonly id: string;
  readonly type: string;
  readonly agentId: string | null;
  readonly orgId: string;
  readonly actor: string;
  readonly data: Record<string, unknown>;
  readonly createdAt: string;
  readonly hash: string | null;
}

// jsonb refuses \u0000 and an unpaired surrogate: text a client sent (a refused scope, say)
// is recorded with U+FFFD in their place rather than failing the request it records.
const storableJsonText = (_key: string, value: unknown) =>
  typeof value === 'string' ? value.replace(/\u0000|[\ud800-\udfff]/gu, '\ufffd') : value;

/** Appends the event (linked into the chain later, in the background); answers its id. */
export async function appendAuditEvent(db: Knex | Knex.Transaction, event: NewAuditEvent): Promise<string> {
  const [row] = await db('audit_events').insert({
    type: event.type,
    agent_id: event.agentId ?? null,
    org_id: event.orgId ?? db.raw(`coalesce((select org_id from agents where id = ?), (select id from organizations where is_platform))`, [event.agentId ?? null]),
    actor: event.actor,
    data: JSON.stringify(event.data ?? {}, storableJsonText),
  }).returning('id');
  return String((row as { id: string | number }).id);
}

/**
 * Summarises the page ranges of audit_events filled since the last call into its BRIN index
 * (migration 20261206090000); answers how many. PostgreSQL's autovacuum does this
 * (autosummarize); the embedded database has no autovacuum, and a range never summarised is
 * read whole by every windowed query.
 */
export async function summarizeAuditRanges(knex: Knex): Promise<number> {
  const result = await knex.raw(`select brin_summarize_new_values('audit_events_created_brin') as summarized`);
  return Number(result.rows[0].summarized);
}

export interface AuditQuery {
  /** One organization's events; events from before organizations are the platform's. */
  readonly orgId: string;
  readonly isPlatform: boolean;
  readonly type?: string;
  readonly agentId?: string;
  readonly since?: Date;
  readonly beforeId?: number;
  readonly limit: number;
}

/** A where-clause for one organization's part of the audit log: events from before organizations (no org_id) are the platform's. */
export function ofOrganization(scope: { readonly orgId: string; readonly isPlatform: boolean }): (builder: Knex.QueryBuilder) => void {
  return (builder) => {
    builder.where('org_id', scope.orgId);
    if (scope.isPlatform) builder.orWhereNull('org_id');
  };
}

/** Newest first; `beforeId` is the cursor of the previous page. */
export async function listAuditEvents(knex: Knex, query: AuditQuery): Promise<{ events: AuditEvent[]; nextCursor: string | null }> {
  await linkAllPendingEvents(knex);
  const rows = await knex('audit_events')
    .where(ofOrganization(query))
    .modify((builder) => {
      if (query.type) builder.where('type', query.type);
      if (query.agentId) builder.where('agent_id', query.agentId);
      if (query.since) builder.where('created_at', '>=', query.since);
      if (query.beforeId) builder.where('id', '<', query.beforeId);
    })
    .orderBy('id', 'desc')
    .limit(query.limit + 1);
  const page = rows.slice(0, query.limit);
  return {
    events: page.map((row: AuditRowRead) => ({
      id: String(row.id),
      type: row.type,
      agentId: row.agent_id,
      orgId: row.org_id ?? query.orgId,
      actor: row.actor,
      data: row.data,
      createdAt: row.created_at.toISOString(),
      hash: row.hash,
    })),
    nextCursor: rows.length > query.limit ? String(page[page.length - 1].id) : null,
  };
}

interface AuditRowRead {
  id: number;
  type: string;
  agent_id: string | null;
  org_id: string | null;
  actor: string;
  data: Record<string, unknown>;
  created_at: Date;
  hash: string | null;
}
