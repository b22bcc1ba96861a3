/** agents create | list | show | suspend | reactivate | decommission, through the agent service. */
import type { Knex } from 'knex';
import type { Agent, AgentStatus } from '../agents/agent.js';
import { createAgentBody } from '../agents/agent-routes.js';
import { createAgent, decommissionAgent, reactivateAgent, suspendAgent } from '../agents/agent-service.js';
import { findAgent, listAgents } from '../agents/agent-store.js';
import { notFound } from '../http/errors.js';
import { parseWith, requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { OPERATOR, listOption, textOption, usageError, type Command } from './command.js';

const STATUSES: readonly AgentStatus[] = ['active', 'suspended', 'decommissioned'];
const PAGE_SIZE = 100;

export function describeAgent(agent: Agent): string {
  return formatFields([
    ['agent id', agent.agentId],
    ['name', agent.name],
    ['description', agent.description ?? '-'],
    ['status', agent.status],
    ['scopes', agent.scopes.join(' ') || '-'],
    ...(agent.registeredRepository ? ([['registered by', agent.registeredRepository]] as const) : []),
    ['created', agent.createdAt],
    ['updated', agent.updatedAt],
  ]);
}

async function listAllAgents(knex: Knex, status: AgentStatus | undefined): Promise<Agent[]> {
  const all: Agent[] = [];
  let after: { createdAt: string; agentId: string } | undefined;
  for (;;) {
    const { agents, hasMore } = await listAgents(knex, { limit: PAGE_SIZE, status, after });
    all.push(...agents);
    if (!hasMore) return all;
    const last = agents[agents.length - 1];
    after = { createdAt: last.createdAt, agentId: last.agentId };
  }
}

type Transition = (knex: Knex, agentId: string, actor: string) => Promise<Agent>;

function transitionCommand(verb: string, transition: Transition, summary: string): Command {
  return {
    name: `agents ${verb}`,
    summary,
    arguments: ['agentId'],
    run: async ({ knex, output }, { args }) => {
      const agent = await transition(knex, requireUuid(args[0], 'agentId'), OPERATOR);
      output.result(agent, () => `agent ${agent.agentId} (${agent.name}) is ${agent.status}`);
    },
  };
}

export const agentCommands: Command[] = [
  {
    name: 'agents create',
    summary: 'create an agent (then give it a credential or a trust policy)',
    synopsis: '--name <name> [--description <text>] [--scope <scope>]...',
    options: { name: { type: 'string' }, description: { type: 'string' }, scope: { type: 'string', multiple: true } },
    run: async ({ knex, output }, { options }) => {
      if (options.name === undefined) throw usageError('--name is required');
      const input = parseWith(
        createAgentBody,
        { name: textOption(options.name), description: textOption(options.description), scopes: listOption(options.scope) },
        'The agent',
      );
      const agent = await createAgent(knex, input, OPERATOR);
      output.result(agent, () => `agent created\n${describeAgent(agent)}`);
    },
  },
  {
    name: 'agents list',
    summary: 'list every agent, oldest first',
    readsOnly: true,
    synopsis: '[--status active|suspended|decommissioned]',
    options: { status: { type: 'string' } },
    run: async ({ knex, output }, { options }) => {
      const status = textOption(options.status);
      if (status !== undefined && !STATUSES.includes(status as AgentStatus)) {
        throw usageError(`--status must be one of ${STATUSES.join(', ')}`);
      }
      const agents = await listAllAgents(knex, status as AgentStatus | undefined);
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
    run: async ({ knex, output }, { args }) => {
      const agent = await findAgent(knex, requireUuid(args[0], 'agentId'));
      if (!agent) throw notFound('Agent');
      output.result(agent, () => describeAgent(agent));
    },
  },
  transitionCommand('suspend', suspendAgent, 'suspend an agent: no new tokens, and its live tokens are revoked'),
  transitionCommand('reactivate', reactivateAgent, 'reactivate a suspended agent'),
  transitionCommand('decommission', decommissionAgent, 'decommission an agent (final: its credentials and tokens die)'),
];
