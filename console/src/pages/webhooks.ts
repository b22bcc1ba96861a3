/**
 * Webhooks: endpoints (creating one shows its signing secret once; deleting; sending a
 * test event), and an endpoint's deliveries with their attempts, each redeliverable.
 */
import { segment, withQuery, type Page } from '../api.js';
import { add, badge, field, formatTime, h, statusTone, table, uniqueId } from '../dom.js';
import { actionButton, announce, call, confirmedButton, errorRegion, has, heading, onSubmit, pagedList, secretOnce, section } from '../ui.js';

interface Endpoint {
  webhookId: string;
  url: string;
  description: string | null;
  eventTypes: string[];
  enabled: boolean;
  disabledReason: string | null;
  failingSince: string | null;
  lastSuccessAt: string | null;
  createdAt: string;
}

interface Delivery {
  deliveryId: string;
  messageId: string;
  eventType: string;
  status: 'pending' | 'succeeded' | 'failed';
  attempts: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  createdAt: string;
}

interface Attempt {
  attemptedAt: string;
  statusCode: number | null;
  durationMs: number;
  responseBody: string;
  error: string | null;
}

function endpointState(endpoint: Endpoint): HTMLElement {
  if (!endpoint.enabled) return badge(endpoint.disabledReason ? `disabled: ${endpoint.disabledReason}` : 'disabled', 'bad');
  return endpoint.failingSince ? badge(`failing since ${formatTime(endpoint.failingSince)}`, 'warn') : badge('enabled', 'good');
}

function createForm(eventTypes: readonly string[], onCreated: (endpoint: Endpoint & { secret: string }) => Promise<void>): HTMLElement {
  const errors = errorRegion();
  const url = h('input', { name: 'url', type: 'url', required: true, autocomplete: 'off', spellcheck: 'false', placeholder: 'https://example.com/hooks/sentryagent' });
  const description = h('input', { name: 'description', autocomplete: 'off' });
  const all = h('input', { type: 'checkbox', id: uniqueId('event'), value: '*' });
  all.checked = true;
  const boxes = eventTypes.map((type) => h('input', { type: 'checkbox', id: uniqueId('event'), value: type }));
  const events = h('fieldset', { class: 'scopes' }, h('legend', {}, 'Events'), h('label', { class: 'check', for: all.id }, all, ' every event (*)'), boxes.map((box) => h('label', { class: 'check', for: box.id }, box, ` ${box.value}`)));
  const form = h('form', { class: 'card', novalidate: true }, field('URL (https)', url), field('Description (optional)', description), events, errors, h('button', { type: 'submit', class: 'primary' }, 'Create endpoint'));
  onSubmit(form, errors, async () => {
    const chosen = all.checked ? ['*'] : boxes.filter((box) => box.checked).map((box) => box.value);
    if (!url.value.trim()) throw new Error('Give the endpoint’s URL.');
    if (chosen.length === 0) throw new Error('Choose at least one event.');
    const created = await call<Endpoint & { secret: string }>('POST', '/api/v1/webhooks', { url: url.value.trim(), eventTypes: chosen, ...(description.value.trim() && { description: description.value.trim() }) });
    form.reset();
    announce('Webhook endpoint created.');
    await onCreated(created);
  });
  return section('Add an endpoint', form);
}

export async function webhooksPage(main: HTMLElement): Promise<void> {
  const errors = errorRegion();
  const fresh = h('div', {});
  const results = h('div', {});
  const list = pagedList(results, (cursor) => call<Page<Endpoint>>('GET', withQuery('/api/v1/webhooks', { cursor, limit: '100' })), (endpoints) =>
    table('Webhook endpoints', ['URL', 'Events', 'State', 'Last success', ''], endpoints.map((endpoint) => [
      h('a', { href: `#/webhooks/${segment(endpoint.webhookId)}` }, endpoint.url),
      endpoint.eventTypes.join(' '),
      endpointState(endpoint),
      formatTime(endpoint.lastSuccessAt),
      has('webhooks:write')
        ? confirmedButton('Delete', { title: 'Delete this endpoint?', text: `${endpoint.url} receives no more events, and its pending deliveries are dropped.`, confirm: 'Delete endpoint' }, async () => {
            await call('DELETE', `/api/v1/webhooks/${segment(endpoint.webhookId)}`);
            announce('Endpoint deleted.');
            await list.reload();
          }, errors, { 'aria-label': `Delete the endpoint ${endpoint.url}` })
        : '',
    ]), 'No webhook endpoints yet.'),
  );
  main.append(heading('Webhooks'), errors, fresh, results);
  if (has('webhooks:write')) {
    const types = await call<{ data: { type: string }[] }>('GET', '/api/v1/webhooks/event-types');
    main.append(createForm(types.data.map((item) => item.type), async (created) => {
      fresh.replaceChildren(section(`Endpoint ${created.url}`, secretOnce('Signing secret', created.secret)));
      await list.reload();
    }));
  }
  await list.reload();
}

function attemptsOf(webhookId: string, delivery: Delivery, errors: ReturnType<typeof errorRegion>): HTMLElement {
  const details = h('details', {}, h('summary', {}, `${delivery.attempts} attempt${delivery.attempts === 1 ? '' : 's'}`));
  details.addEventListener('toggle', async () => {
    if (!details.open || details.dataset.loaded) return;
    details.dataset.loaded = 'yes';
    try {
      const attempts = await call<{ data: Attempt[] }>('GET', `/api/v1/webhooks/${segment(webhookId)}/deliveries/${segment(delivery.deliveryId)}/attempts`);
      details.append(h('ol', {}, attempts.data.map((attempt) =>
        h('li', {}, `${formatTime(attempt.attemptedAt)}: ${attempt.statusCode ?? 'no answer'} in ${attempt.durationMs} ms`, attempt.error ? ` (${attempt.error})` : '', attempt.responseBody ? h('pre', {}, attempt.responseBody) : null))));
    } catch (error) {
      errors.show(error);
    }
  });
  return details;
}

export async function webhookDetailPage(main: HTMLElement, webhookId?: string): Promise<void> {
  const endpoint = await call<Endpoint>('GET', `/api/v1/webhooks/${segment(webhookId!)}`);
  const errors = errorRegion();
  const results = h('div', {});
  const list = pagedList(results, (cursor) => call<Page<Delivery>>('GET', withQuery(`/api/v1/webhooks/${segment(endpoint.webhookId)}/deliveries`, { cursor, limit: '50' })), (deliveries) =>
    table('Deliveries', ['Event', 'Status', 'Last answer', 'Attempts', 'Created', ''], deliveries.map((delivery) => [
      delivery.eventType,
      badge(delivery.status, statusTone(delivery.status)),
      delivery.lastStatusCode === null ? '—' : String(delivery.lastStatusCode),
      attemptsOf(endpoint.webhookId, delivery, errors),
      formatTime(delivery.createdAt),
      has('webhooks:write')
        ? actionButton('Redeliver', async () => {
            await call('POST', `/api/v1/webhooks/${segment(endpoint.webhookId)}/deliveries/${segment(delivery.deliveryId)}/redeliver`);
            announce('Queued for delivery again.');
            await list.reload();
          }, errors, { 'aria-label': `Redeliver ${delivery.eventType} ${delivery.messageId}` })
        : '',
    ]), 'No deliveries yet.'),
  );
  add(main,
    h('p', {}, h('a', { href: '#/webhooks' }, '← All endpoints')),
    heading(`Endpoint ${endpoint.url}`),
    h('p', {}, endpointState(endpoint), ` · events: ${endpoint.eventTypes.join(' ')}`),
    has('webhooks:write')
      ? h('div', { class: 'actions' }, actionButton('Send a test event', async () => {
          await call('POST', `/api/v1/webhooks/${segment(endpoint.webhookId)}/test`);
          announce('Test event queued.');
          await list.reload();
        }, errors), actionButton('Refresh', () => list.reload(), errors))
      : null,
    errors,
    section('Deliveries', results),
  );
  await list.reload();
}
