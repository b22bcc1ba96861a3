/**
 * The webhook event catalogue, which audit events each type comes from, and the thin payload
 * a delivery carries: `{type, timestamp, data}` with ids, the actor, the organization and the
 * audit event's id and chain sequence, never a secret, a token or a credential hash (the
 * audit log holds none, and only ids, `jti` and a refusal's `reason` are taken from it).
 * `audit.chain_broken` alone is not an audit event (maintenance.ts says why): its payload
 * has no audit id or sequence.
 */

export const WEBHOOK_EVENT_TYPES = [
  'agent.created',
  'agent.updated',
  'agent.suspended',
  'agent.reactivated',
  'agent.decommissioned',
  'credential.created',
  'credential.revoked',
  'token.issued',
  'token.revoked',
  'trust_policy.created',
  'trust_policy.deleted',
  'oidc_exchange.refused',
  'quota.reached',
  'org.suspended',
  'signing_key.rotated',
  'audit.chain_broken',
  'webhook.test',
  'webhook.endpoint_disabled',
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** High volume: delivered only to endpoints that name it; `"*"` does not include it. */
export const NAMED_ONLY: readonly WebhookEventType[] = ['token.issued'];
/** Sent to the one endpoint a test names, whatever it subscribes to. */
export const TEST_EVENT: WebhookEventType = 'webhook.test';

/** Audit event type → webhook event type. Audit types not listed here are not delivered. */
export const FROM_AUDIT: Readonly<Record<string, WebhookEventType>> = {
  'agent.created': 'agent.created',
  'agent.registered': 'agent.created',
  'agent.updated': 'agent.updated',
  'agent.suspended': 'agent.suspended',
  'agent.reactivated': 'agent.reactivated',
  'agent.decommissioned': 'agent.decommissioned',
  'credential.created': 'credential.created',
  'credential.revoked': 'credential.revoked',
  'token.issued': 'token.issued',
  'oidc.exchange.granted': 'token.issued',
  'federation.exchange.granted': 'token.issued',
  'token.revoked': 'token.revoked',
  'trust_policy.created': 'trust_policy.created',
  'trust_policy.deleted': 'trust_policy.deleted',
  'oidc.exchange.refused': 'oidc_exchange.refused',
  'oidc.register.refused': 'oidc_exchange.refused',
  'federation.exchange.refused': 'oidc_exchange.refused',
  'quota.reached': 'quota.reached',
  'org.suspended': 'org.suspended',
  'signing_key.rotated': 'signing_key.rotated',
  'webhook.test': 'webhook.test',
  'webhook.endpoint_disabled': 'webhook.endpoint_disabled',
};

const ORG = '5f0c2a8e-3b1d-4c6f-9a7e-2d4b6c8e0f12';
const AGENT = '7d9e1f3a-5b7c-4d9e-8f1a-3b5c7d9e1f3a';
const ACTOR = `agent:${AGENT}`;

/** What each type means, and a payload as it is delivered (ids are examples). */
export const EVENT_DESCRIPTIONS: Readonly<Record<WebhookEventType, { readonly description: string; readonly data: Record<string, unknown> }>> = {
  'agent.created': { description: 'An agent was created, or registered by a GitHub workflow.', data: { agentId: AGENT } },
  'agent.updated': { description: "An agent's name, description or scopes changed.", data: { agentId: AGENT } },
  'agent.suspended': { description: 'An agent was suspended; its tokens are revoked.', data: { agentId: AGENT } },
  'agent.reactivated': { description: 'A suspended agent was reactivated.', data: { agentId: AGENT } },
  'agent.decommissioned': { description: 'An agent was decommissioned for good.', data: { agentId: AGENT } },
  'credential.created': { description: 'A client credential was issued to an agent.', data: { agentId: AGENT, credentialId: '0b6f2c4e-8a1d-4f3b-9c5e-7a9b1d3f5e7a' } },
  'credential.revoked': { description: 'A client credential was revoked.', data: { agentId: AGENT, credentialId: '0b6f2c4e-8a1d-4f3b-9c5e-7a9b1d3f5e7a' } },
  'token.issued': {
    description: 'An access token was issued, by any grant. High volume: delivered only to endpoints that name it ("*" does not include it).',
    data: { agentId: AGENT, jti: '4c8e2a6f-1b3d-4f5a-9e7c-2b4d6f8a0c1e', credentialId: '0b6f2c4e-8a1d-4f3b-9c5e-7a9b1d3f5e7a' },
  },
  'token.revoked': { description: 'An access token was revoked (RFC 7009).', data: { agentId: AGENT, jti: '4c8e2a6f-1b3d-4f5a-9e7c-2b4d6f8a0c1e' } },
  'trust_policy.created': { description: 'A trust policy (GitHub exchange or registration) was created.', data: { agentId: AGENT, policyId: '9a1b3c5d-7e9f-4a1b-8c3d-5e7f9a1b3c5d' } },
  'trust_policy.deleted': { description: 'A trust policy was deleted; the tokens it issued are revoked.', data: { agentId: AGENT, policyId: '9a1b3c5d-7e9f-4a1b-8c3d-5e7f9a1b3c5d' } },
  'oidc_exchange.refused': {
    description: 'A verified GitHub ID token or federation partner token was refused for an agent of the organization (no matching policy or binding, a replay, a suspended agent, …).',
    data: { agentId: AGENT, reason: 'no trust policy of the agent matches' },
  },
  'quota.reached': { description: "The first grant of the month refused for a monthly limit (the agent's or the organization's).", data: { reason: 'org_monthly_limit', month: '2026-12' } },
  'org.suspended': { description: 'The organization was suspended; its tokens stop working.', data: {} },
  'signing_key.rotated': { description: 'The token signing key was rotated. Platform organization only.', data: { kid: 'k-2026-12-01' } },
  'audit.chain_broken': {
    description: 'The audit chain no longer holds the head of the last signed digest (events deleted or rewritten). Platform organization only; not itself an audit event, so its payload has no audit id or sequence.',
    data: { digestSeq: '12', reason: 'the chain no longer holds the head of the last signed digest' },
  },
  'webhook.test': { description: 'Sent by POST /webhooks/{id}/test to that endpoint only.', data: { webhookId: '3e5f7a9b-1c3d-4e5f-8a9b-1c3d5e7f9a1b' } },
  'webhook.endpoint_disabled': {
    description: "One of the organization's endpoints was disabled (it answered 410, or failed for five days); sent to its other endpoints.",
    data: { webhookId: '3e5f7a9b-1c3d-4e5f-8a9b-1c3d5e7f9a1b', reason: 'failing' },
  },
};

/** The audit row a payload is made from. */
export interface AuditSource {
  readonly auditEventId: string;
  readonly chainSeq: number;
  readonly orgId: string;
  readonly agentId: string | null;
  readonly actor: string;
  readonly data: Record<string, unknown>;
  readonly createdAt: Date;
}

const CARRIED = /^(?:[a-z][A-Za-z]*Ids?|jti|kid|reason|month)$/;

/** The body of a delivery, the same bytes on every attempt. */
export function payloadOf(type: WebhookEventType, event: AuditSource): string {
  const carried = Object.fromEntries(Object.entries(event.data).filter(([key, value]) => CARRIED.test(key) && (typeof value === 'string' || isStringArray(value))));
  return JSON.stringify({
    type,
    timestamp: event.createdAt.toISOString(),
    data: {
      ...carried,
      ...(event.agentId && { agentId: event.agentId }),
      orgId: event.orgId,
      actor: event.actor,
      auditEventId: event.auditEventId,
      auditSequence: event.chainSeq,
    },
  });
}

const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string');

/** The catalogue as GET /webhooks/event-types answers it. */
export function eventCatalogue(): { type: WebhookEventType; description: string; example: unknown }[] {
  const timestamp = new Date('2026-12-01T09:30:00.000Z');
  return WEBHOOK_EVENT_TYPES.map((type) => {
    const { description, data } = EVENT_DESCRIPTIONS[type];
    const example =
      type === 'audit.chain_broken'
        ? { type, timestamp: timestamp.toISOString(), data: { ...data, orgId: ORG, actor: 'system' } }
        : JSON.parse(payloadOf(type, { auditEventId: '1042', chainSeq: 1042, orgId: ORG, agentId: null, actor: type === 'signing_key.rotated' ? 'system' : ACTOR, data, createdAt: timestamp }));
    return { type, description, example };
  });
}
