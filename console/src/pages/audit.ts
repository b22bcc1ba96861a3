/**
 * The audit log: the chain's verification as a badge, the events filtered by type, agent
 * and time, page by page (newest first).
 */
import { ApiError, withQuery, type Page } from '../api.js';
import { badge, field, formatTime, h, table } from '../dom.js';
import { call, errorRegion, heading, onSubmit, pagedList, section } from '../ui.js';

interface AuditEvent {
  id: string;
  type: string;
  agentId: string | null;
  orgId: string;
  actor: string;
  data: Record<string, unknown>;
  createdAt: string;
  hash: string | null;
}

interface Verification {
  valid: boolean;
  checked: number;
  firstInvalidId?: string;
  firstInvalidSeq?: number;
  digestsChecked: number;
}

/** The audit chain's verification (GET /api/v1/audit/verify) as a badge, with what was checked. */
export async function chainBadge(): Promise<HTMLElement> {
  const errors = errorRegion();
  const holder = h('div', { class: 'chain', role: 'status' }, 'Verifying the audit chain…');
  try {
    const verification = await call<Verification>('GET', '/api/v1/audit/verify');
    holder.replaceChildren(
      verification.valid
        ? badge('Audit chain verified', 'good')
        : badge(`Audit chain broken at event ${verification.firstInvalidId ?? '?'} (sequence ${verification.firstInvalidSeq ?? '?'})`, 'bad'),
      ` ${verification.checked.toLocaleString('en-US')} events and ${verification.digestsChecked} signed digests checked.`,
    );
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      // A tenant's token: the walk covers every organization, so the platform verifies it.
      holder.replaceChildren(badge('Verification: platform only', 'neutral'), ' The chain spans every organization, so the platform’s administrators verify it.');
    } else {
      holder.replaceChildren(badge('Chain not verified', 'warn'));
      errors.show(error);
    }
  }
  return h('div', {}, holder, errors);
}

/** `data` as short text: key=value pairs, values as JSON. */
const summary = (data: Record<string, unknown>) =>
  Object.entries(data)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');

export async function auditPage(main: HTMLElement): Promise<void> {
  const type = h('input', { name: 'type', autocomplete: 'off', spellcheck: 'false', placeholder: 'token.issued', pattern: '[a-z_.]{1,64}' });
  const agentId = h('input', { name: 'agentId', autocomplete: 'off', spellcheck: 'false' });
  const since = h('input', { name: 'since', type: 'datetime-local' });
  const errors = errorRegion();
  const results = h('div', {});
  const list = pagedList(results, (cursor) =>
    call<Page<AuditEvent>>('GET', withQuery('/api/v1/audit', {
      type: type.value.trim(),
      agentId: agentId.value.trim(),
      since: since.value ? new Date(`${since.value}Z`).toISOString() : undefined,
      cursor,
      limit: '50',
    })), (events) =>
    table('Audit events', ['#', 'Time', 'Type', 'Actor', 'Agent', 'Details'], events.map((event) => [
      event.id,
      formatTime(event.createdAt),
      h('code', {}, event.type),
      event.actor,
      event.agentId ? h('a', { href: `#/agents/${encodeURIComponent(event.agentId)}` }, event.agentId.slice(0, 8)) : '—',
      h('span', { class: 'data' }, summary(event.data)),
    ]), 'No events match.'),
  );
  const filters = h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter the audit log' },
    field('Event type', type, 'e.g. agent.suspended'),
    field('Agent ID', agentId),
    field('Since (UTC)', since),
    h('button', { type: 'submit' }, 'Apply filters'),
  );
  onSubmit(filters, errors, () => list.reload());
  main.append(heading('Audit log'), await chainBadge(), section('Events', filters, errors, results));
  await list.reload().catch((error) => errors.show(error));
}
