/**
 * webhooks list | create | delete | test | deliveries | redeliver, through the webhook
 * service, in an organization (`--org`, as agents and policies). The signing secret is
 * printed once, by `create`; nothing else can show it again.
 */
import type { Caller } from '../authorization/caller.js';
import { isStorableInstant, parseWith, requireUuid } from '../http/validation.js';
import { WEBHOOK_EVENT_TYPES } from '../webhooks/event-types.js';
import { createWebhookInput } from '../webhooks/webhook-input.js';
import type { WebhookService } from '../webhooks/webhook-service.js';
import type { DeliveryStatus, WebhookAttempt, WebhookDelivery, WebhookEndpoint } from '../webhooks/webhook-store.js';
import { inOrganization, listOption, textOption, usageError, type Command, type DatabaseCommand, type Invocation } from './command.js';
import { formatFields, formatTable } from './output.js';

const PAGE_SIZE = 100;
const DELIVERY_STATUSES: readonly DeliveryStatus[] = ['pending', 'succeeded', 'failed'];
const DEFAULT_DELIVERIES = 50;
const FILTERS = ['status', 'event', 'since', 'limit'] as const;
const MAX_DELIVERIES = 100;
/** The part of an answer's body shown in a table; --json has the stored KiB. */
const MAX_BODY_CHARS = 60;
const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/i;

const webhookIdOf = ({ args }: Invocation) => requireUuid(args[0], 'webhookId');

/** A delivery id as the API takes it (a positive integer). */
function deliveryIdOf(value: string, name: string): string {
  if (!/^[1-9]\d{0,17}$/.test(value)) throw usageError(`${name} must be a delivery id (a positive whole number), not ${JSON.stringify(value)}`);
  return value;
}

function stateOf(endpoint: WebhookEndpoint): string {
  if (endpoint.enabled) return 'enabled';
  if (endpoint.disabledReason === 'gone') return 'disabled (it answered 410 Gone)';
  return endpoint.disabledReason === 'failing' ? 'disabled (failing for five days)' : 'disabled';
}

function describeEndpoint(endpoint: WebhookEndpoint): string {
  return formatFields([
    ['webhook id', endpoint.webhookId],
    ['url', endpoint.url],
    ['events', endpoint.eventTypes.join(' ')],
    ['description', endpoint.description ?? '-'],
    ['state', stateOf(endpoint)],
    ['last success', endpoint.lastSuccessAt ?? 'never'],
    ['failing since', endpoint.failingSince ?? '-'],
    ['organization', endpoint.orgId],
    ['created', endpoint.createdAt],
  ]);
}

/** Text from a receiver's answer, safe on a terminal: control characters escaped, long bodies cut. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  const escaped = text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (character) => JSON.stringify(character).slice(1, -1));
  return escaped.length > MAX_BODY_CHARS ? `${escaped.slice(0, MAX_BODY_CHARS - 1)}…` : escaped;
}

async function listAllEndpoints(service: WebhookService, caller: Caller, orgId: string | undefined): Promise<WebhookEndpoint[]> {
  const all: WebhookEndpoint[] = [];
  for (let afterId: string | undefined; ; ) {
    const { endpoints, hasMore } = await service.list(caller, { orgId, afterId, limit: PAGE_SIZE });
    all.push(...endpoints);
    if (!hasMore) return all;
    afterId = endpoints[endpoints.length - 1].webhookId;
  }
}

/** `--status`, `--event`, `--since` and `--limit`, as the service's delivery query. */
function deliveryQuery({ options }: Invocation) {
  const status = textOption(options.status);
  if (status !== undefined && !DELIVERY_STATUSES.includes(status as DeliveryStatus)) throw usageError(`--status must be one of ${DELIVERY_STATUSES.join(', ')}`);
  const eventType = textOption(options.event);
  if (eventType !== undefined && !(WEBHOOK_EVENT_TYPES as readonly string[]).includes(eventType)) throw usageError(`--event: unknown event type ${JSON.stringify(eventType)}`);
  const since = textOption(options.since);
  const sinceMs = since === undefined ? undefined : Date.parse(since);
  if (since !== undefined && (!ISO_TIME.test(since) || Number.isNaN(sinceMs) || !isStorableInstant(since))) {
    throw usageError('--since must be an ISO 8601 time with its offset between the years 0001 and 9999, e.g. 2026-12-01T09:00:00Z');
  }
  const limit = textOption(options.limit) ?? String(DEFAULT_DELIVERIES);
  if (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > MAX_DELIVERIES) throw usageError(`--limit must be a whole number from 1 to ${MAX_DELIVERIES}`);
  return { status: status as DeliveryStatus | undefined, eventType, sinceMs, limit: Number(limit) };
}

function deliveriesTable(deliveries: readonly WebhookDelivery[], hasMore: boolean): string {
  const table = formatTable(
    ['DELIVERY ID', 'EVENT', 'STATUS', 'ATTEMPTS', 'LAST STATUS CODE', 'CREATED'],
    deliveries.map((delivery) => [delivery.deliveryId, delivery.eventType, delivery.status, String(delivery.attempts), String(delivery.lastStatusCode ?? '-'), delivery.createdAt]),
    'no deliveries',
  );
  return hasMore ? `${table}\n(older deliveries not shown: narrow with --since, --status or --event)` : table;
}

function attemptsTable(attempts: readonly WebhookAttempt[]): string {
  return formatTable(
    ['TIME', 'STATUS CODE', 'DURATION', 'ERROR', 'BODY'],
    attempts.map((attempt) => [attempt.attemptedAt, String(attempt.statusCode ?? '-'), `${attempt.durationMs} ms`, printable(attempt.error ?? '-'), printable(attempt.responseBody) || '-']),
    'no attempts yet',
  );
}

const commands: DatabaseCommand[] = [
  {
    name: 'webhooks list',
    summary: "list an organization's webhook endpoints",
    readsOnly: true,
    run: async ({ webhooks, caller, orgId, output }) => {
      const endpoints = await listAllEndpoints(webhooks, caller, orgId);
      output.result(endpoints, () =>
        formatTable(
          ['WEBHOOK ID', 'URL', 'EVENTS', 'STATE', 'LAST SUCCESS'],
          endpoints.map((endpoint) => [endpoint.webhookId, endpoint.url, endpoint.eventTypes.join(','), stateOf(endpoint), endpoint.lastSuccessAt ?? 'never']),
          'no webhook endpoints',
        ),
      );
    },
  },
  {
    name: 'webhooks create',
    summary: 'add a webhook endpoint; its signing secret is printed this once',
    synopsis: '--url <url> --events <type,type|*> [--description <text>] [--disabled]',
    options: { url: { type: 'string' }, events: { type: 'string', multiple: true }, description: { type: 'string' }, disabled: { type: 'boolean' } },
    optionHelp: {
      url: 'where events are POSTed: https, or http to a range EGRESS_ALLOW_CIDRS allows; never a private address (required)',
      events: `the event types it receives, comma separated or repeated; * is every type but token.issued (required): ${WEBHOOK_EVENT_TYPES.join(', ')}`,
      description: 'a description for people',
      disabled: 'create it disabled: nothing is delivered until it is enabled',
    },
    run: async ({ webhooks, caller, orgId, output }, { options }) => {
      if (options.url === undefined) throw usageError('--url is required');
      if (options.events === undefined) throw usageError(`--events is required: * or some of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
      const input = parseWith(
        createWebhookInput,
        { url: textOption(options.url), eventTypes: listOption(options.events), description: textOption(options.description), enabled: options.disabled !== true, orgId },
        'The webhook',
      );
      const endpoint = await webhooks.create(caller, input);
      output.result(endpoint, () =>
        ['webhook endpoint created', describeEndpoint(endpoint), '', `signing secret: ${endpoint.secret}`, 'Store it now: it is never shown again.'].join('\n'),
      );
    },
  },
  {
    name: 'webhooks delete',
    summary: 'delete a webhook endpoint, with its deliveries and their attempts',
    arguments: ['webhookId'],
    synopsis: '[--yes]',
    options: { yes: { type: 'boolean', short: 'y' } },
    optionHelp: { yes: 'do not ask for confirmation on a terminal' },
    confirmation: ({ args }) => `Delete webhook endpoint ${args[0]}? Its delivery history is deleted with it. [y/N] `,
    run: async ({ webhooks, caller, output }, invocation) => {
      const endpoint = await webhooks.delete(caller, webhookIdOf(invocation));
      output.result(endpoint, () => `webhook endpoint ${endpoint.webhookId} deleted`);
    },
  },
  {
    name: 'webhooks test',
    summary: 'queue a webhook.test event for one endpoint (sent by the running server)',
    arguments: ['webhookId'],
    run: async ({ webhooks, caller, output }, invocation) => {
      const delivery = await webhooks.test(caller, webhookIdOf(invocation));
      output.result(delivery, () => `webhook.test queued: delivery ${delivery.deliveryId} (see \`webhooks deliveries ${delivery.webhookId}\`)`);
    },
  },
  {
    name: 'webhooks deliveries',
    summary: "list an endpoint's deliveries, newest first, or (--attempts) one delivery's attempts",
    readsOnly: true,
    arguments: ['webhookId'],
    synopsis: '[--status pending|succeeded|failed] [--event <type>] [--since <time>] [--limit <n>] | --attempts <deliveryId>',
    options: { status: { type: 'string' }, event: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' }, attempts: { type: 'string' } },
    optionHelp: {
      status: 'only the deliveries in this state: pending, succeeded or failed',
      event: 'only the deliveries of this event type',
      since: 'only the deliveries queued at or after this ISO 8601 time (e.g. 2026-12-01T09:00:00Z)',
      limit: `the most deliveries shown, 1 to ${MAX_DELIVERIES} (default ${DEFAULT_DELIVERIES})`,
      attempts: "show this delivery's attempts instead: time, status code, duration, error and the start of the answer",
    },
    run: async ({ webhooks, caller, output }, invocation) => {
      const webhookId = webhookIdOf(invocation);
      const deliveryId = textOption(invocation.options.attempts);
      if (deliveryId !== undefined) {
        if (FILTERS.some((name) => invocation.options[name] !== undefined)) throw usageError('--attempts takes no other option: it shows one delivery');
        const attempts = await webhooks.attempts(caller, webhookId, deliveryIdOf(deliveryId, '--attempts'));
        output.result(attempts, () => attemptsTable(attempts));
        return;
      }
      const { deliveries, hasMore } = await webhooks.deliveries(caller, webhookId, deliveryQuery(invocation));
      output.result(deliveries, () => deliveriesTable(deliveries, hasMore));
    },
  },
  {
    name: 'webhooks redeliver',
    summary: 'send a finished delivery again, from its first attempt, with the same webhook-id',
    arguments: ['webhookId', 'deliveryId'],
    run: async ({ webhooks, caller, output }, invocation) => {
      const delivery = await webhooks.redeliver(caller, webhookIdOf(invocation), deliveryIdOf(invocation.args[1], 'deliveryId'));
      output.result(delivery, () => `delivery ${delivery.deliveryId} (${delivery.eventType}) queued again`);
    },
  },
];

/** Every one takes `--org`, as agents and policies do: an endpoint of another organization is not found. */
export const webhookCommands: Command[] = commands.map(inOrganization);
