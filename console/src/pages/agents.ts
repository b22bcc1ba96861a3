/** Agents: the list (filtered by status and name), creating one, and an agent's page with its scopes, state and credentials. */
import { segment, withQuery, type Agent, type Credential, type NewCredential, type Page } from '../api.js';
import { add, badge, field, formatTime, h, setFieldError, statusTone, table } from '../dom.js';
import { actionButton, announce, call, confirmedButton, errorRegion, has, heading, onSubmit, pagedList, scopePicker, secretOnce, section } from '../ui.js';

function agentTable(agents: readonly Agent[], nameFilter: string): HTMLElement {
  const shown = agents.filter((agent) => agent.name.toLowerCase().includes(nameFilter.toLowerCase()));
  return table(
    'Agents',
    ['Name', 'Status', 'Scopes', 'Created'],
    shown.map((agent) => [
      h('a', { href: `#/agents/${segment(agent.agentId)}` }, agent.name),
      badge(agent.status, statusTone(agent.status)),
      agent.scopes.join(' ') || '—',
      formatTime(agent.createdAt),
    ]),
    nameFilter ? 'No agent read so far has a name containing that.' : 'No agents.',
  );
}

function createAgentForm(onCreated: (agent: Agent) => void): HTMLElement {
  const errors = errorRegion();
  const name = h('input', { name: 'name', required: true, maxlength: 128, autocomplete: 'off' });
  const description = h('input', { name: 'description', maxlength: 1024, autocomplete: 'off' });
  const scopes = scopePicker('Scopes it may hold');
  const form = h('form', { class: 'card' }, field('Name', name), field('Description (optional)', description), scopes, errors, h('button', { type: 'submit', class: 'primary' }, 'Create agent'));
  onSubmit(form, errors, async () => {
    setFieldError(name, name.value.trim() ? '' : 'Give the agent a name.');
    if (!name.value.trim()) return name.focus();
    const agent = await call<Agent>('POST', '/api/v1/agents', { name: name.value.trim(), ...(description.value.trim() && { description: description.value.trim() }), scopes: scopes.selected() });
    announce(`Agent ${agent.name} created.`);
    onCreated(agent);
  });
  return section('Create an agent', form);
}

export async function agentsPage(main: HTMLElement): Promise<void> {
  const status = h('select', { name: 'status' }, ['', 'active', 'suspended', 'decommissioned'].map((value) => h('option', { value }, value || 'any')));
  const nameFilter = h('input', { type: 'search', name: 'name', autocomplete: 'off' });
  const results = h('div', {});
  const list = pagedList(results, (cursor) => call<Page<Agent>>('GET', withQuery('/api/v1/agents', { status: status.value, cursor, limit: '100' })), (agents) => agentTable(agents, nameFilter.value.trim()));
  status.addEventListener('change', () => list.reload().catch(() => undefined));
  nameFilter.addEventListener('input', () => list.redraw());
  main.append(
    heading('Agents'),
    h('div', { class: 'filters', role: 'search', 'aria-label': 'Filter agents' }, field('Status', status), field('Name contains', nameFilter)),
    results,
  );
  if (has('agents:write')) main.append(createAgentForm((agent) => (window.location.hash = `#/agents/${segment(agent.agentId)}`)));
  await list.reload();
}

function credentialsSection(agent: Agent): HTMLElement {
  const errors = errorRegion();
  const list = h('div', {});
  const fresh = h('div', { class: 'fresh-secret' });
  async function reload(): Promise<void> {
    const credentials = await call<{ data: Credential[] }>('GET', `/api/v1/agents/${segment(agent.agentId)}/credentials`);
    list.replaceChildren(
      table(
        'Credentials',
        ['Client ID', 'Status', 'Created', 'Revoked', ''],
        credentials.data.map((credential) => [
          h('code', {}, credential.clientId),
          badge(credential.status, statusTone(credential.status)),
          formatTime(credential.createdAt),
          formatTime(credential.revokedAt),
          credential.status === 'active' && has('agents:write')
            ? confirmedButton('Revoke', { title: 'Revoke this credential?', text: `Credential ${credential.credentialId} stops working at once, and the tokens it obtained are revoked.`, confirm: 'Revoke credential' }, async () => {
                await call('DELETE', `/api/v1/agents/${segment(agent.agentId)}/credentials/${segment(credential.credentialId)}`);
                announce('Credential revoked.');
                await reload();
              }, errors, { 'aria-label': `Revoke credential ${credential.credentialId}` })
            : '',
        ]),
        'No credentials.',
      ),
    );
  }
  const create = has('agents:write') && agent.status === 'active'
    ? actionButton('Create a credential', async () => {
        const credential = await call<NewCredential>('POST', `/api/v1/agents/${segment(agent.agentId)}/credentials`);
        fresh.replaceChildren(h('p', {}, 'Client ID ', h('code', {}, credential.clientId)), secretOnce('Client secret', credential.clientSecret));
        await reload();
        fresh.querySelector<HTMLInputElement>('input')?.focus();
      }, errors, { class: 'primary' })
    : null;
  const part = section('Credentials', errors, fresh, list, create);
  reload().catch((error) => errors.show(error));
  return part;
}

function scopesForm(agent: Agent, onSaved: () => void): HTMLElement {
  const errors = errorRegion();
  const scopes = scopePicker('Scopes', agent.scopes);
  const form = h('form', { class: 'card' }, scopes, h('p', { class: 'hint' }, 'Taking a scope away revokes the agent’s live tokens.'), errors, h('button', { type: 'submit' }, 'Save scopes'));
  onSubmit(form, errors, async () => {
    await call('PATCH', `/api/v1/agents/${segment(agent.agentId)}`, { scopes: scopes.selected() });
    announce('Scopes saved.');
    onSaved();
  });
  return section('Scopes', form);
}

function stateActions(agent: Agent, onChanged: () => void): HTMLElement {
  const errors = errorRegion();
  const path = `/api/v1/agents/${segment(agent.agentId)}`;
  const transition = (action: 'suspend' | 'reactivate', label: string) =>
    actionButton(label, async () => {
      await call('POST', `${path}/${action}`);
      announce(`Agent ${action === 'suspend' ? 'suspended' : 'reactivated'}.`);
      onChanged();
    }, errors);
  const decommission = confirmedButton('Decommission…', { title: `Decommission ${agent.name}?`, text: 'Its credentials and tokens die, and it cannot be undone.', confirm: 'Decommission' }, async () => {
    await call('DELETE', path);
    announce('Agent decommissioned.');
    onChanged();
  }, errors);
  const buttons = agent.status === 'active' ? [transition('suspend', 'Suspend'), decommission] : agent.status === 'suspended' ? [transition('reactivate', 'Reactivate'), decommission] : [];
  return section('State', h('p', {}, 'Status: ', badge(agent.status, statusTone(agent.status))), h('div', { class: 'actions' }, buttons), errors);
}

export async function agentDetailPage(main: HTMLElement, agentId?: string): Promise<void> {
  const agent = await call<Agent>('GET', `/api/v1/agents/${segment(agentId!)}`);
  const redraw = () => {
    main.replaceChildren();
    agentDetailPage(main, agentId).then(() => main.querySelector<HTMLElement>('h1')?.focus(), (error) => {
      const errors = errorRegion();
      errors.show(error);
      main.append(errors);
    });
  };
  add(main,
    h('p', {}, h('a', { href: '#/agents' }, '← All agents')),
    heading(`Agent ${agent.name}`),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Agent ID'), h('dd', {}, h('code', {}, agent.agentId)),
      h('dt', {}, 'Organization'), h('dd', {}, h('code', {}, agent.orgId)),
      h('dt', {}, 'Description'), h('dd', {}, agent.description ?? '—'),
      h('dt', {}, 'Registered from'), h('dd', {}, agent.registeredRepository ?? '—'),
      h('dt', {}, 'Created'), h('dd', {}, formatTime(agent.createdAt)),
      h('dt', {}, 'Updated'), h('dd', {}, formatTime(agent.updatedAt)),
    ),
    has('agents:write') ? stateActions(agent, redraw) : null,
    has('agents:write') && agent.status !== 'decommissioned' ? scopesForm(agent, redraw) : section('Scopes', h('p', {}, agent.scopes.join(' ') || 'none')),
    agent.status === 'decommissioned' ? null : credentialsSection(agent),
  );
}
