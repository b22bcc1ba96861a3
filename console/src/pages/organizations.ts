/** Organizations (admin:orgs): the list, creating one with its first admin (whose secret is shown once), suspending and reactivating. */
import { segment, withQuery, type NewCredential, type Page } from '../api.js';
import { badge, field, formatTime, h, setFieldError, statusTone, table } from '../dom.js';
import { actionButton, announce, call, confirmedButton, errorRegion, heading, onSubmit, pagedList, scopePicker, secretOnce, section } from '../ui.js';

interface Organization {
  orgId: string;
  slug: string;
  name: string;
  status: 'active' | 'suspended' | 'decommissioned';
  isPlatform: boolean;
  limits: { monthlyTokens: number | null; maxAgents: number | null; maxWebhookEndpoints: number | null };
  createdAt: string;
}

interface CreatedOrganization extends Organization {
  admin?: { agentId: string; name: string; credential: NewCredential };
}

const SLUG = /^[a-z0-9-]{2,63}$/;
const limitText = (value: number | null) => (value === null ? 'none' : value.toLocaleString('en-US'));

function createForm(onCreated: (created: CreatedOrganization) => Promise<void>): HTMLElement {
  const errors = errorRegion();
  const slug = h('input', { name: 'slug', required: true, autocomplete: 'off', spellcheck: 'false' });
  const name = h('input', { name: 'name', required: true, autocomplete: 'off' });
  const monthlyTokens = h('input', { name: 'monthlyTokens', type: 'number', min: 1, inputmode: 'numeric' });
  const maxAgents = h('input', { name: 'maxAgents', type: 'number', min: 1, inputmode: 'numeric' });
  const adminName = h('input', { name: 'adminName', autocomplete: 'off' });
  const adminScopes = scopePicker('First admin’s scopes', ['agents:read', 'agents:write', 'audit:read']);
  slug.addEventListener('input', () => setFieldError(slug, !slug.value || SLUG.test(slug.value) ? '' : '2 to 63 lower-case letters, digits and hyphens, e.g. acme-ci.'));
  const form = h('form', { class: 'card', novalidate: true },
    field('Slug', slug, 'Lower-case letters, digits and hyphens.'),
    field('Name', name),
    field('Tokens per month (optional)', monthlyTokens),
    field('Most agents (optional)', maxAgents),
    field('First admin agent’s name (optional)', adminName, 'Creates the organization’s first admin with a credential, shown once.'),
    adminScopes,
    errors,
    h('button', { type: 'submit', class: 'primary' }, 'Create organization'),
  );
  onSubmit(form, errors, async () => {
    if (!SLUG.test(slug.value) || !name.value.trim()) throw new Error('Give a valid slug and a name.');
    const limits: Record<string, number> = {};
    if (monthlyTokens.value) limits.monthlyTokens = Number(monthlyTokens.value);
    if (maxAgents.value) limits.maxAgents = Number(maxAgents.value);
    const created = await call<CreatedOrganization>('POST', '/api/v1/orgs', {
      slug: slug.value,
      name: name.value.trim(),
      ...(Object.keys(limits).length && { limits }),
      ...(adminName.value.trim() && { admin: { name: adminName.value.trim(), scopes: adminScopes.selected() } }),
    });
    form.reset();
    announce(`Organization ${created.slug} created.`);
    await onCreated(created);
  });
  return section('Create an organization', form);
}

export async function organizationsPage(main: HTMLElement): Promise<void> {
  const errors = errorRegion();
  const fresh = h('div', {});
  const results = h('div', {});
  const transition = (org: Organization, action: 'suspend' | 'reactivate') => async () => {
    await call('POST', `/api/v1/orgs/${segment(org.orgId)}/${action}`);
    announce(`Organization ${action === 'suspend' ? 'suspended' : 'reactivated'}.`);
    await list.reload();
  };
  const suspend = (org: Organization) =>
    confirmedButton('Suspend', { title: `Suspend ${org.slug}?`, text: 'Its agents get no tokens, and their live tokens stop working, until it is reactivated.', confirm: 'Suspend' }, transition(org, 'suspend'), errors, { 'aria-label': `Suspend ${org.slug}`, class: '' });
  const reactivate = (org: Organization) => actionButton('Reactivate', transition(org, 'reactivate'), errors, { 'aria-label': `Reactivate ${org.slug}` });
  const list = pagedList(results, (cursor) => call<Page<Organization>>('GET', withQuery('/api/v1/orgs', { cursor, limit: '100' })), (orgs) =>
    table('Organizations', ['Slug', 'Name', 'Status', 'Tokens per month', 'Most agents', 'Created', ''], orgs.map((org) => [
      h('code', {}, org.slug),
      org.name,
      org.isPlatform ? badge('platform', 'neutral') : badge(org.status, statusTone(org.status)),
      limitText(org.limits.monthlyTokens),
      limitText(org.limits.maxAgents),
      formatTime(org.createdAt),
      org.isPlatform ? '' : org.status === 'active' ? suspend(org) : org.status === 'suspended' ? reactivate(org) : '',
    ]), 'No organizations.'),
  );
  main.append(heading('Organizations'), errors, fresh, results, createForm(async (created) => {
    fresh.replaceChildren(
      created.admin
        ? section(`First admin of ${created.slug}`, h('p', {}, 'Client ID ', h('code', {}, created.admin.credential.clientId)), secretOnce('Client secret', created.admin.credential.clientSecret))
        : h('p', {}, `Organization ${created.slug} created.`),
    );
    await list.reload();
  }));
  await list.reload();
}
