/**
 * GitHub trust policies: the list, creating one (each field checked as it is typed, by the
 * server's own rules, and the server's answer shown by the field it names), deleting one,
 * and evaluating a pasted GitHub ID token to see which constraint a refused workflow failed.
 */
import { ApiError, segment, withQuery, type Agent, type Page, type TokenCheck } from '../api.js';
import { badge, field, formatTime, h, setFieldError, table } from '../dom.js';
import { actionButton, announce, call, confirmedButton, errorRegion, has, heading, onSubmit, pagedList, scopePicker, section } from '../ui.js';

interface TrustPolicy {
  id: string;
  repository: string;
  agentId: string | null;
  branch: string | null;
  tag: string | null;
  environment: string | null;
  workflowRef: string | null;
  jobWorkflowRef: string | null;
  repositoryId: string | null;
  repositoryOwnerId: string | null;
  scopes: string[] | null;
  createdAt: string;
}

interface Evaluation {
  token: TokenCheck;
  policies: { policyId: string; agentId: string | null; isMatch: boolean; mismatches: { constraint: string; reason: string }[] }[];
}

// The server's rules (server/src/github/trust-policy-input.ts), to say what is wrong before sending.
const RULES: Record<string, { pattern: RegExp; message: string }> = {
  repository: { pattern: /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9._-]{1,100}$/, message: 'Write it as owner/name, e.g. octo-org/octo-repo.' },
  branch: { pattern: /^(?!refs\/)(?!\/)(?!-)(?!.*\.\.)(?!.*\/\/)[^\s~^:?[\\]{1,255}(?<![/.])$/, message: 'A branch name or glob such as main or release/*, not refs/heads/….' },
  tag: { pattern: /^(?!refs\/)(?!\/)(?!-)(?!.*\.\.)(?!.*\/\/)[^\s~^:?[\\]{1,255}(?<![/.])$/, message: 'A tag name or glob such as v1.2.0 or v*, not refs/tags/….' },
  environment: { pattern: /^.{1,255}$/, message: 'At most 255 characters.' },
  workflowRef: { pattern: /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+\/[^\s@]+@[^\s]+$/, message: 'Like owner/repo/.github/workflows/file.yml@refs/heads/main.' },
  jobWorkflowRef: { pattern: /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+\/[^\s@]+@[^\s]+$/, message: 'Like owner/repo/.github/workflows/file.yml@refs/heads/main.' },
  repositoryId: { pattern: /^[1-9]\d{0,19}$/, message: 'GitHub’s numeric repository id, e.g. 123456789.' },
  repositoryOwnerId: { pattern: /^[1-9]\d{0,19}$/, message: 'GitHub’s numeric owner id, e.g. 987654.' },
};

const LABELS: Record<keyof typeof RULES, string> = {
  repository: 'Repository (owner/name)',
  branch: 'Branch (optional)',
  tag: 'Tag (optional)',
  environment: 'Environment (optional)',
  workflowRef: 'Workflow ref (optional)',
  jobWorkflowRef: 'Job workflow ref (optional)',
  repositoryId: 'Repository id (optional)',
  repositoryOwnerId: 'Repository owner id (optional)',
};

function checkField(input: HTMLInputElement, name: string, isRequired: boolean): boolean {
  const value = input.value.trim();
  const rule = RULES[name]!;
  const message = !value ? (isRequired ? 'Required.' : '') : rule.pattern.test(value) ? '' : rule.message;
  setFieldError(input, message);
  return message === '';
}

/** Shows the server's per-field complaints (details.issues[].path) next to their fields. */
function showFieldIssues(error: unknown, inputs: Record<string, HTMLInputElement>): void {
  if (!(error instanceof ApiError)) return;
  const issues = (error.details?.issues as { path?: string; message?: string }[] | undefined) ?? [];
  for (const issue of issues) {
    const input = issue.path ? inputs[String(issue.path).split('.')[0]!] : undefined;
    if (input) setFieldError(input, `The server says: ${issue.message ?? 'invalid'}.`);
  }
}

function agentSelect(agents: readonly Agent[], label: string, allowNone: string): HTMLSelectElement {
  return h('select', { name: 'agentId', 'data-label': label }, h('option', { value: '' }, allowNone), agents.map((agent) => h('option', { value: agent.agentId }, `${agent.name} (${agent.status})`)));
}

function createPolicyForm(agents: readonly Agent[], onCreated: () => Promise<void>): HTMLElement {
  const errors = errorRegion();
  const inputs = Object.fromEntries(Object.keys(RULES).map((name) => [name, h('input', { name, autocomplete: 'off', spellcheck: 'false' })])) as Record<string, HTMLInputElement>;
  inputs.repository!.required = true;
  for (const [name, input] of Object.entries(inputs)) input.addEventListener('input', () => checkField(input, name, name === 'repository'));
  const agent = agentSelect(agents, 'Agent', 'none: a registration policy (register-agent)');
  const scopes = scopePicker('Scopes (optional: the agent’s own when none is chosen)');
  const form = h('form', { class: 'card', novalidate: true },
    h('input', { type: 'hidden', name: 'provider', value: 'github' }),
    field('Agent', agent, 'The agent a matching workflow gets tokens for.'),
    ['repository', 'branch', 'tag'].map((name) => field(LABELS[name]!, inputs[name]!)),
    h('details', { class: 'more' }, h('summary', {}, 'More constraints: environment, workflow, ids'),
      ['environment', 'workflowRef', 'jobWorkflowRef', 'repositoryId', 'repositoryOwnerId'].map((name) => field(LABELS[name]!, inputs[name]!))),
    scopes,
    errors,
    h('button', { type: 'submit', class: 'primary' }, 'Create trust policy'),
  );
  onSubmit(form, errors, async () => {
    const valid = Object.entries(inputs).map(([name, input]) => checkField(input, name, name === 'repository')).every(Boolean);
    const selectedScopes = scopes.selected();
    if (!agent.value && selectedScopes.length === 0) throw new Error('A registration policy (no agent) must name its scopes.');
    if (inputs.branch!.value.trim() && inputs.tag!.value.trim()) throw new Error('A policy names a branch or a tag, not both.');
    if (!valid) {
      form.querySelector('details')!.open ||= Boolean(form.querySelector('details [aria-invalid]'));
      throw new Error('Some fields need fixing: see the messages by each.');
    }
    const body: Record<string, unknown> = { provider: 'github' };
    for (const [name, input] of Object.entries(inputs)) if (input.value.trim()) body[name] = input.value.trim();
    if (agent.value) body.agentId = agent.value;
    if (selectedScopes.length > 0) body.scopes = selectedScopes;
    try {
      await call('POST', '/api/v1/oidc/trust-policies', body);
    } catch (error) {
      showFieldIssues(error, inputs);
      throw error;
    }
    form.reset();
    announce('Trust policy created.');
    await onCreated();
  });
  return section('Create a trust policy', form);
}

function constraintsOf(policy: TrustPolicy): string {
  const named = (['branch', 'tag', 'environment', 'workflowRef', 'jobWorkflowRef', 'repositoryId', 'repositoryOwnerId'] as const)
    .filter((key) => policy[key])
    .map((key) => `${key}=${policy[key]}`);
  return named.join(', ') || 'any ref';
}

function evaluateForm(agents: readonly Agent[]): HTMLElement {
  const errors = errorRegion();
  const token = h('textarea', { name: 'token', rows: 4, required: true, spellcheck: 'false', autocomplete: 'off' });
  const agent = agentSelect(agents, 'Agent', 'every policy');
  const result = h('div', { class: 'evaluation', 'aria-live': 'polite' });
  const form = h('form', { class: 'card' },
    field('GitHub ID token', token, 'Paste the JWT a workflow presented. It is only checked, never exchanged.'),
    field('For agent', agent),
    errors,
    h('button', { type: 'submit' }, 'Evaluate'),
  );
  onSubmit(form, errors, async () => {
    if (!token.value.trim()) throw new Error('Paste an ID token first.');
    const evaluation = await call<Evaluation>('POST', '/api/v1/oidc/trust-policies/evaluate', { token: token.value.trim(), ...(agent.value && { agentId: agent.value }) });
    result.replaceChildren(
      h('p', {}, 'Token: ', evaluation.token.isVerified ? badge('signature verified', 'good') : badge(evaluation.token.isVerified === false ? 'not verified' : 'not checked', 'bad'), evaluation.token.reason ? ` ${evaluation.token.reason}` : ''),
      evaluation.policies.length === 0
        ? h('p', {}, 'No trust policy names this repository.')
        : h('ul', { class: 'results' }, evaluation.policies.map((policy) =>
            h('li', {},
              policy.isMatch ? badge('matches', 'good') : badge('does not match', 'bad'),
              ` policy ${policy.policyId}`,
              policy.mismatches.length ? h('ul', {}, policy.mismatches.map((mismatch) => h('li', {}, h('strong', {}, mismatch.constraint), `: ${mismatch.reason}`))) : null,
            ))),
    );
  });
  return section('Evaluate an ID token', h('p', {}, 'Why was a workflow refused? Paste its GitHub ID token to see which constraint of each policy it fails.'), form, result);
}

export async function policiesPage(main: HTMLElement): Promise<void> {
  const agents = (await call<Page<Agent>>('GET', withQuery('/api/v1/agents', { limit: '100' }))).data;
  const nameOf = new Map(agents.map((agent) => [agent.agentId, agent.name]));
  const results = h('div', {});
  const errors = errorRegion();
  const list = pagedList(results, (cursor) => call<Page<TrustPolicy>>('GET', withQuery('/api/v1/oidc/trust-policies', { cursor, limit: '100' })), (policies) =>
    table('Trust policies', ['Repository', 'Agent', 'Constraints', 'Scopes', 'Created', ''], policies.map((policy) => [
      policy.repository,
      policy.agentId ? nameOf.get(policy.agentId) ?? policy.agentId : 'registration',
      constraintsOf(policy),
      policy.scopes?.join(' ') ?? 'the agent’s',
      formatTime(policy.createdAt),
      has('agents:write')
        ? confirmedButton('Delete', { title: 'Delete this trust policy?', text: `Workflows of ${policy.repository} it admitted are refused from now on, and the tokens they hold through it are revoked.`, confirm: 'Delete policy' }, async () => {
            await call('DELETE', `/api/v1/oidc/trust-policies/${segment(policy.id)}`);
            announce('Trust policy deleted.');
            await list.reload();
          }, errors, { 'aria-label': `Delete the policy for ${policy.repository}` })
        : '',
    ]), 'No trust policies yet.'),
  );
  main.append(heading('Trust policies'), errors, results);
  if (has('agents:write')) main.append(createPolicyForm(agents, () => list.reload()));
  main.append(evaluateForm(agents));
  await list.reload();
}
