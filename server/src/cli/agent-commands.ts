/** agents create | list | show | suspend | reactivate | decommission, through the agent service. */
import type { Agent, AgentStatus } from '../agents/agent.js';
import { agentPatchInput, createAgentInput } from '../agents/agent-input.js';
import type { AgentService } from '../agents/agent-service.js';
import type { Caller } from '../authorization/caller.js';
import { parseWith, requireUuid } from '../http/validation.js';
import type { Organization } from '../tenancy/organization.js';
import { formatFields, formatTable } from './output.js';
import { inOrganization, listOption, textOption, usageError, type Command, type DatabaseCommand, type Invocation } from './command.js';

const STATUSES: readonly AgentStatus[] = ['active', 'suspended', 'decommissioned'];
const PAGE_SIZE = 100;

/** An organization in one line: its slug, and its id. */
const organizationLabel = (org: Organization) => `${org.slug} (${org.orgId})`;

/** The agent's fields; its organization by slug when `org` is given, else by id. */
export function describeAgent(agent: Agent, org?: Organization): string {
  return formatFields([
    ['agent id', agent.agentId],
    ['name', agent.name],
    ['description', agent.description ?? '-'],
    ['status', agent.status],
    ['scopes', agent.scopes.join(' ') || '-'],
    ['organization', org ? organizationLabel(org) : agent.orgId],
    ...(agent.registeredRepository ? ([['registered by', agent.registeredRepository]] as const) : []),
    ['created', agent.createdAt],
    ['updated', agent.updatedAt],
  ]);
}

async function listAllAgents(service: AgentService, caller: Caller, orgId: string | undefined, status: AgentStatus | undefined): Promise<Agent[]> {
  const all: Agent[] = [];
  let after: { createdAt: string; agentId: string } | undefined;
  for (;;) {
    const { agents, hasMore } = await service.list(caller, { orgId, limit: PAGE_SIZE, status, after });
    all.push(...agents);
    if (!hasMore) return all;
    const last = agents[agents.length - 1];
    after = { createdAt: last.createdAt, agentId: last.agentId };
  }
}

type Transition = 'suspend' | 'reactivate' | 'decommission';

function transitionCommand(verb: Transition, summary: string): DatabaseCommand {
  const isFinal = verb === 'decommission';
  return {
    name: `agents ${verb}`,
    summary,
    arguments: ['agentId'],
    ...(isFinal && {
      synopsis: '[--yes]',
      options: { yes: { type: 'boolean', short: 'y' } },
      optionHelp: { yes: 'do not ask for confirmation on a terminal' },
      confirmation: ({ args }: Invocation) => `Decommission agent ${args[0]}? Its credentials and tokens die, and it cannot be undone. [y/N] `,
    }),
    run: async ({ services, caller, output }, { args }) => {
      const agent = await services.agents[verb](caller, requireUuid(args[0], 'agentId'));
      output.result(agent, () => `agent ${agent.agentId} (${agent.name}) is ${agent.status}`);
    },
  };
}

const commands: DatabaseCommand[] = [
  {
    name: 'agents create',
    summary: 'create an agent (then give it a credential or a trust policy)',
    synopsis: '--name <name> [--description <text>] [--scope <scope>]...',
    options: { name: { type: 'string' }, description: { type: 'string' }, scope: { type: 'string', multiple: true } },
    optionHelp: {
      name: 'a name for people (required)',
      description: 'what the agent is for',
      scope: 'a scope it may hold (agents:read, agents:write, tokens:read, audit:read, …); repeat, or space-separate',
    },
    run: async ({ services, caller, orgId, output }, { options }) => {
      if (options.name === undefined) throw usageError('--name is required');
      const input = parseWith(
        createAgentInput,
        { orgId, name: textOption(options.name), description: textOption(options.description), scopes: listOption(options.scope) },
        'The agent',
      );
      const agent = await services.agents.create(caller, input);
      output.result(agent, () => `agent created\n${describeAgent(agent)}`);
    },
  },
  {
    name: 'agents list',
    summary: 'list the agents of an organization, oldest first',
    readsOnly: true,
    synopsis: '[--status active|suspended|decommissioned]',
    options: { status: { type: 'string' } },
    optionHelp: { status: 'only agents in this status: active, suspended or decommissioned' },
    run: async ({ services, caller, orgId, output }, { options }) => {
      const status = textOption(options.status);
      if (status !== undefined && !STATUSES.includes(status as AgentStatus)) {
        throw usageError(`--status must be one of ${STATUSES.join(', ')}`);
      }
      const agents = await listAllAgents(services.agents, caller, orgId, status as AgentStatus | undefined);
      output.result(agents, () =>
        formatTable(
          ['AGENT ID', 'NAME', 'STATUS', 'SCOPES', 'CREATED'],
          agents.map((agent) => [agent.agentId, agent.name, agent.status, agent.scopes.join(' ') || '-', agent.createdAt]),
          'no agents',
        ),
      );
    },
  },
  {
    name: 'agents show',
    summary: 'show one agent',
    readsOnly: true,
    arguments: ['agentId'],
    run: async ({ services, caller, output }, { args }) => {
      const agent = await services.agents.get(caller, requireUuid(args[0], 'agentId'));
      const org = output.isJson ? undefined : await services.organizations.get(caller, agent.orgId);
      output.result(agent, () => describeAgent(agent, org));
    },
  },
  {
    name: 'agents update',
    summary: "change an agent's name, description or scopes (--scope replaces them all)",
    arguments: ['agentId'],
    synopsis: "[--name <name>] [--description <text>] [--scope <scope>]...  (--scope '' for none)",
    options: { name: { type: 'string' }, description: { type: 'string' }, scope: { type: 'string', multiple: true } },
    optionHelp: {
      name: 'the new name',
      description: 'the new description',
      scope: "the scopes it holds from now on, replacing them all (--scope '' for none); taking one away revokes its live tokens",
    },
    run: async ({ services, caller, output }, { args, options }) => {
      const patch = parseWith(
        agentPatchInput,
        Object.fromEntries(
          Object.entries({ name: textOption(options.name), description: textOption(options.description), scopes: listOption(options.scope) }).filter(
            ([, value]) => value !== undefined,
          ),
        ),
        'The change',
      );
      const agent = await services.agents.update(caller, requireUuid(args[0], 'agentId'), patch);
      output.result(agent, () => `agent updated\n${describeAgent(agent)}`);
    },
  },
  transitionCommand('suspend', 'suspend an agent: no new tokens, and its live tokens are revoked'),
  transitionCommand('reactivate', 'reactivate a suspended agent'),
  transitionCommand('decommission', 'decommission an agent (final: its credentials and tokens die)'),
];

/** Each takes `--org`: a list or a creation is in that organization, an agent of another one is not found. */
export const agentCommands: Command[] = commands.map(inOrganization);
