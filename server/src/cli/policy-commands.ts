/** policies add | list | remove: GitHub trust policies, through the trust-policy service. */
import type { Caller } from '../authorization/caller.js';
import { parseTrustPolicyInput } from '../github/trust-policy-input.js';
import type { TrustPolicyService } from '../github/trust-policy-service.js';
import type { StoredTrustPolicy } from '../github/trust-policy-store.js';
import { requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { inOrganization, listOption, textOption, usageError, type Command, type DatabaseCommand } from './command.js';

const PAGE_SIZE = 100;

function constraintsOf(policy: StoredTrustPolicy): string {
  const constraints = [
    policy.environment && `environment=${policy.environment}`,
    policy.workflowRef && `workflow=${policy.workflowRef}`,
    policy.jobWorkflowRef && `job-workflow=${policy.jobWorkflowRef}`,
    policy.allowedEvents.length > 0 && `events=${policy.allowedEvents.join(',')}`,
    policy.scopes && `scopes=${policy.scopes.join(',') || '(none)'}`,
  ].filter(Boolean);
  return constraints.join(' ') || '-';
}

function describePolicy(policy: StoredTrustPolicy): string {
  return formatFields([
    ['policy id', policy.id],
    ['repository', policy.repository],
    ['agent', policy.agentId ?? '(registration policy)'],
    ['ref', refOf(policy)],
    ['repository id', policy.repositoryId ?? '(bound at the first exchange)'],
    ['owner id', policy.repositoryOwnerId ?? '(bound at the first exchange)'],
    ['constraints', constraintsOf(policy)],
    ['organization', policy.orgId],
    ['created', policy.createdAt],
  ]);
}

/** What the policy lets through as `ref`: a branch (pattern), a tag (pattern), or any branch. */
function refOf(policy: StoredTrustPolicy): string {
  if (policy.tag) return `tag ${policy.tag}`;
  return policy.branch ? `branch ${policy.branch}` : 'any branch';
}

async function listAllPolicies(service: TrustPolicyService, caller: Caller, orgId: string | undefined, agentId: string | undefined): Promise<StoredTrustPolicy[]> {
  const all: StoredTrustPolicy[] = [];
  let afterId: string | undefined;
  for (;;) {
    const { policies, hasMore } = await service.list(caller, { orgId, agentId, afterId, limit: PAGE_SIZE });
    all.push(...policies);
    if (!hasMore) return all;
    afterId = policies[policies.length - 1].id;
  }
}

const commands: DatabaseCommand[] = [
  {
    name: 'policies add',
    summary: 'add a GitHub trust policy (without --agent: a registration policy)',
    synopsis:
      '--repository <owner/name> [--agent <agentId>] [--branch <name> | --tag <name>] [--environment <name>] [--workflow-ref <ref>] ' +
      '[--job-workflow-ref <ref>] [--repository-id <id>] [--repository-owner-id <id>] [--allow-event <event>]... [--scope <scope>]...',
    options: {
      repository: { type: 'string' },
      agent: { type: 'string' },
      branch: { type: 'string' },
      tag: { type: 'string' },
      environment: { type: 'string' },
      'workflow-ref': { type: 'string' },
      'job-workflow-ref': { type: 'string' },
      'repository-id': { type: 'string' },
      'repository-owner-id': { type: 'string' },
      'allow-event': { type: 'string', multiple: true },
      scope: { type: 'string', multiple: true },
    },
    optionHelp: {
      repository: 'the GitHub repository, owner/name (required; ASCII case ignored)',
      agent: 'the agent the workflow may act for; without it, a registration policy',
      branch: 'only runs on this branch: a name or a glob (* within a path segment, ** across); not with --tag',
      tag: 'only runs on this tag: a name or a glob, e.g. v*; not with --branch',
      environment: 'only jobs in this deployment environment',
      'workflow-ref': 'only this calling workflow: owner/repo/.github/workflows/file.yml@ref',
      'job-workflow-ref': 'only this (reusable) job workflow: owner/repo/.github/workflows/file.yml@ref',
      'repository-id': "GitHub's numeric repository id (else bound at the first exchange)",
      'repository-owner-id': "GitHub's numeric owner id (else bound at the first exchange)",
      'allow-event': 'let this privileged event in: pull_request_target, workflow_run or issue_comment; repeatable',
      scope: "what a workflow may obtain, a subset of the agent's scopes; repeatable; a registration policy needs it ('' for none)",
    },
    run: async ({ services, caller, orgId, output }, { options }) => {
      if (options.repository === undefined) throw usageError('--repository is required');
      const policy = parseTrustPolicyInput({
        provider: 'github',
        orgId,
        repository: textOption(options.repository),
        agentId: textOption(options.agent),
        branch: textOption(options.branch),
        tag: textOption(options.tag),
        environment: textOption(options.environment),
        workflowRef: textOption(options['workflow-ref']),
        jobWorkflowRef: textOption(options['job-workflow-ref']),
        repositoryId: textOption(options['repository-id']),
        repositoryOwnerId: textOption(options['repository-owner-id']),
        allowedEvents: listOption(options['allow-event']),
        scopes: listOption(options.scope),
      });
      const created = await services.trustPolicies.create(caller, policy);
      output.result(created, () => `trust policy created\n${describePolicy(created)}`);
    },
  },
  {
    name: 'policies list',
    summary: "list the trust policies of an organization (--agent: of one agent)",
    readsOnly: true,
    synopsis: '[--agent <agentId>]',
    options: { agent: { type: 'string' } },
    optionHelp: { agent: "only this agent's policies" },
    run: async ({ services, caller, orgId, output }, { options }) => {
      const agent = textOption(options.agent);
      const policies = await listAllPolicies(services.trustPolicies, caller, orgId, agent === undefined ? undefined : requireUuid(agent, '--agent'));
      output.result(policies, () =>
        formatTable(
          ['POLICY ID', 'REPOSITORY', 'AGENT', 'REF', 'CONSTRAINTS'],
          policies.map((policy) => [policy.id, policy.repository, policy.agentId ?? '(registration)', refOf(policy), constraintsOf(policy)]),
          'no trust policies',
        ),
      );
    },
  },
  {
    name: 'policies remove',
    summary: 'remove a trust policy',
    arguments: ['policyId'],
    run: async ({ services, caller, output }, { args }) => {
      const removed = await services.trustPolicies.delete(caller, requireUuid(args[0], 'policyId'));
      output.result(removed, () => `trust policy ${removed.id} (${removed.repository}) removed`);
    },
  },
];

/** Each takes `--org`: a list or a new policy is in that organization, a policy (or agent) of another one is not found. */
export const policyCommands: Command[] = commands.map(inOrganization);
