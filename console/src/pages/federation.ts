/**
 * Federation bindings: which partner's subjects may act as which agent, under which
 * conditions; creating (conditions as rows), deleting, and evaluating a partner's token.
 */
import { segment, withQuery, type Agent, type Condition, type Page, type TokenCheck } from '../api.js';
import { badge, field, formatTime, h, table } from '../dom.js';
import { actionButton, announce, call, confirmedButton, errorRegion, has, heading, onSubmit, pagedList, scopePicker, section } from '../ui.js';

interface Partner {
  partnerId: string;
  name: string;
  preset: string;
  issuer: string;
  status: string;
}

interface Binding {
  bindingId: string;
  partnerId: string;
  agentId: string;
  conditions: Condition[];
  scopes: string[] | null;
  maxTtlSeconds: number | null;
  createdAt: string;
}

interface PartnerEvaluation {
  token: TokenCheck;
  requiredClaims: { condition: Condition; isMet: boolean; actual?: unknown }[];
  bindings: { bindingId: string; agentId: string; isMatch: boolean; conditions: { condition: Condition; isMet: boolean; actual?: unknown }[] }[];
  wouldGrant: boolean;
}

const describe = (condition: Condition) => `${condition.claim} ${condition.op} ${Array.isArray(condition.value) ? condition.value.join(', ') : condition.value}`;

function conditionResults(results: PartnerEvaluation['requiredClaims']): HTMLElement {
  return h('ul', {}, results.map((result) => h('li', {}, result.isMet ? badge('met', 'good') : badge('failed', 'bad'), ` ${describe(result.condition)}`, result.actual === undefined ? ' (claim absent)' : ` (token has ${JSON.stringify(result.actual)})`)));
}

/** Rows of claim / operator / value; `read()` gives the conditions, or throws saying which row is incomplete. */
function conditionsEditor(): HTMLFieldSetElement & { read(): Condition[] } {
  const rows = h('div', {});
  const addRow = () => {
    const claim = h('input', { name: 'claim', autocomplete: 'off', spellcheck: 'false' });
    const op = h('select', { name: 'op' }, ['eq', 'in', 'glob'].map((value) => h('option', { value }, value)));
    const value = h('input', { name: 'value', autocomplete: 'off', spellcheck: 'false' });
    const row = h('div', { class: 'condition-row' }, field('Claim', claim), field('Operator', op), field('Value (for “in”: comma-separated)', value));
    row.append(h('button', { type: 'button', class: 'link', onClick: () => row.remove(), 'aria-label': 'Remove this condition' }, 'Remove'));
    rows.append(row);
  };
  const fieldset = h('fieldset', {}, h('legend', {}, 'Conditions on the partner’s claims'), rows, h('button', { type: 'button', onClick: addRow }, 'Add a condition')) as HTMLFieldSetElement & { read(): Condition[] };
  addRow();
  fieldset.read = () =>
    [...rows.querySelectorAll('.condition-row')].map((row, index) => {
      const [claim, op, value] = ['claim', 'op', 'value'].map((name) => row.querySelector<HTMLInputElement | HTMLSelectElement>(`[name=${name}]`)!.value.trim());
      if (!claim || !value) throw new Error(`Condition ${index + 1} needs a claim and a value.`);
      return { claim, op: op as Condition['op'], value: op === 'in' ? value.split(',').map((item) => item.trim()).filter(Boolean) : value };
    });
  return fieldset;
}

function createBindingForm(partners: readonly Partner[], agents: readonly Agent[], onCreated: () => Promise<void>): HTMLElement {
  const errors = errorRegion();
  const partner = h('select', { name: 'partnerId', required: true }, partners.map((item) => h('option', { value: item.partnerId }, `${item.name} (${item.preset})`)));
  const agent = h('select', { name: 'agentId', required: true }, agents.map((item) => h('option', { value: item.agentId }, item.name)));
  const conditions = conditionsEditor();
  const scopes = scopePicker('Scopes (optional: the agent’s own when none is chosen)');
  const maxTtl = h('input', { name: 'maxTtlSeconds', type: 'number', min: 60, step: 1, inputmode: 'numeric' });
  const form = h('form', { class: 'card' }, field('Partner', partner), field('Agent', agent), conditions, scopes, field('Longest token lifetime in seconds (optional)', maxTtl), errors, h('button', { type: 'submit', class: 'primary' }, 'Create binding'));
  onSubmit(form, errors, async () => {
    if (!partner.value || !agent.value) throw new Error('Choose a partner and an agent.');
    const body: Record<string, unknown> = { partnerId: partner.value, agentId: agent.value, conditions: conditions.read() };
    if (scopes.selected().length) body.scopes = scopes.selected();
    if (maxTtl.value) body.maxTtlSeconds = Number(maxTtl.value);
    await call('POST', '/api/v1/federation/bindings', body);
    announce('Binding created.');
    await onCreated();
  });
  return section('Create a binding', partners.length ? form : h('p', {}, 'No federation partner is available to this organization yet; a platform administrator adds partners.'));
}

function evaluateForm(partners: readonly Partner[]): HTMLElement {
  const errors = errorRegion();
  const partner = h('select', { name: 'partnerId' }, partners.map((item) => h('option', { value: item.partnerId }, item.name)));
  const token = h('textarea', { name: 'token', rows: 4, spellcheck: 'false', autocomplete: 'off' });
  const result = h('div', { class: 'evaluation', 'aria-live': 'polite' });
  const form = h('form', { class: 'card' }, field('Partner', partner), field('Partner’s token', token, 'Only checked, never exchanged.'), errors, h('button', { type: 'submit' }, 'Evaluate'));
  onSubmit(form, errors, async () => {
    if (!token.value.trim()) throw new Error('Paste a token first.');
    const evaluation = await call<PartnerEvaluation>('POST', `/api/v1/federation/partners/${segment(partner.value)}/evaluate`, { token: token.value.trim() });
    result.replaceChildren(
      h('p', {}, evaluation.wouldGrant ? badge('would be granted', 'good') : badge('would be refused', 'bad'), ' Token: ', evaluation.token.isVerified ? 'signature verified' : `not verified${evaluation.token.reason ? `: ${evaluation.token.reason}` : ''}`),
      h('h3', {}, 'The partner’s required claims'), evaluation.requiredClaims.length ? conditionResults(evaluation.requiredClaims) : h('p', {}, 'None.'),
      h('h3', {}, 'Bindings'),
      evaluation.bindings.length ? h('ul', {}, evaluation.bindings.map((binding) => h('li', {}, binding.isMatch ? badge('matches', 'good') : badge('does not match', 'bad'), ` binding ${binding.bindingId} → agent ${binding.agentId}`, conditionResults(binding.conditions)))) : h('p', {}, 'No binding of this partner in your organization.'),
    );
  });
  return section('Evaluate a partner’s token', form, result);
}

export async function federationPage(main: HTMLElement): Promise<void> {
  const [partners, agents] = await Promise.all([
    call<Page<Partner>>('GET', withQuery('/api/v1/federation/partners', { limit: '100' })).then((page) => page.data),
    call<Page<Agent>>('GET', withQuery('/api/v1/agents', { limit: '100', status: 'active' })).then((page) => page.data),
  ]);
  const partnerName = new Map(partners.map((partner) => [partner.partnerId, partner.name]));
  const agentName = new Map(agents.map((agent) => [agent.agentId, agent.name]));
  const errors = errorRegion();
  const results = h('div', {});
  const list = pagedList(results, (cursor) => call<Page<Binding>>('GET', withQuery('/api/v1/federation/bindings', { cursor, limit: '100' })), (bindings) =>
    table('Federation bindings', ['Partner', 'Agent', 'Conditions', 'Scopes', 'Longest TTL', 'Created', ''], bindings.map((binding) => [
      partnerName.get(binding.partnerId) ?? binding.partnerId,
      agentName.get(binding.agentId) ?? binding.agentId,
      binding.conditions.map(describe).join('; ') || 'none',
      binding.scopes?.join(' ') ?? 'the agent’s',
      binding.maxTtlSeconds ? `${binding.maxTtlSeconds} s` : '—',
      formatTime(binding.createdAt),
      has('agents:write')
        ? confirmedButton('Delete', { title: 'Delete this binding?', text: 'Tokens granted through it are revoked, and the partner’s subjects it admitted are refused.', confirm: 'Delete binding' }, async () => {
            await call('DELETE', `/api/v1/federation/bindings/${segment(binding.bindingId)}`);
            announce('Binding deleted.');
            await list.reload();
          }, errors, { 'aria-label': `Delete binding ${binding.bindingId}` })
        : '',
    ]), 'No bindings yet.'),
  );
  main.append(heading('Federation'), h('p', {}, `Partners available: ${partners.map((partner) => `${partner.name} (${partner.status})`).join(', ') || 'none'}.`), errors, results);
  if (has('agents:write')) main.append(createBindingForm(partners, agents, () => list.reload()));
  if (partners.length) main.append(evaluateForm(partners));
  await list.reload();
}
