/** orgs create | list | show | update | suspend | reactivate | decommission | usage, through the organization service. */
import type { Caller } from '../authorization/caller.js';
import { parseWith } from '../http/validation.js';
import { createOrganizationInput, organizationPatchInput } from '../organizations/organization-input.js';
import type { OrganizationService, OrganizationUsage } from '../organizations/organization-service.js';
import type { Organization, OrganizationLimits, OrganizationStatus } from '../tenancy/organization.js';
import { formatFields, formatTable } from './output.js';
import { listOption, textOption, usageError, type Command, type CommandContext, type Invocation } from './command.js';

const STATUSES: readonly OrganizationStatus[] = ['active', 'suspended', 'decommissioned'];
const PAGE_SIZE = 100;

/** The limit options, each with the field it sets. */
const LIMIT_OPTIONS: readonly (readonly [option: string, field: keyof OrganizationLimits, what: string])[] = [
  ['monthly-tokens', 'monthlyTokens', 'token grants to its agents per calendar month (UTC)'],
  ['max-agents', 'maxAgents', 'agents that are not decommissioned'],
  ['max-webhook-endpoints', 'maxWebhookEndpoints', 'webhook endpoints'],
];

const limitOptionDeclarations = Object.fromEntries(LIMIT_OPTIONS.map(([option]) => [option, { type: 'string' } as const]));

/** `--max-agents 5` as 5, `none` (when allowed) as null: no limit; the schema judges the number. */
function limitsOf(options: Invocation['options'], allowsNone: boolean): Partial<Record<keyof OrganizationLimits, number | null>> | undefined {
  const limits: Partial<Record<keyof OrganizationLimits, number | null>> = {};
  for (const [option, field] of LIMIT_OPTIONS) {
    const value = textOption(options[option]);
    if (value === undefined) continue;
    if (allowsNone && value === 'none') limits[field] = null;
    else if (/^-?\d+$/.test(value.trim())) limits[field] = Number(value);
    else throw usageError(`--${option} must be a whole number${allowsNone ? ' or none (no limit)' : ''}`);
  }
  return Object.keys(limits).length > 0 ? limits : undefined;
}

const limitText = (limit: number | null) => (limit === null ? 'none' : limit.toLocaleString('en-US'));
const ofLimit = (count: number, limit: number | null) => `${count.toLocaleString('en-US')} of ${limit === null ? 'no limit' : limit.toLocaleString('en-US')}`;

export function describeOrganization(org: Organization): string {
  return formatFields([
    ['org id', org.orgId],
    ['slug', org.slug],
    ['name', org.name],
    ['status', org.status],
    ...(org.isPlatform ? ([['platform', 'yes (admin:orgs lives here)']] as const) : []),
    ['monthly tokens', limitText(org.limits.monthlyTokens)],
    ['max agents', limitText(org.limits.maxAgents)],
    ['max webhook endpoints', limitText(org.limits.maxWebhookEndpoints)],
    ['created', org.createdAt],
    ['updated', org.updatedAt],
  ]);
}

function describeUsage(org: Organization, usage: OrganizationUsage): string {
  const { tokens, refusals, agents } = usage;
  return [
    `usage of ${org.slug} (${org.orgId}) in ${usage.month} (UTC)`,
    formatFields([
      ['tokens granted', ofLimit(tokens.granted, tokens.limit)],
      ['agents', ofLimit(agents.count, agents.limit)],
    ]),
    '',
    'top agents:',
    formatTable(
      ['AGENT ID', 'NAME', 'GRANTED'],
      tokens.byAgent.map((agent) => [agent.agentId, agent.name, agent.granted.toLocaleString('en-US')]),
      '  none this month',
    ),
    '',
    'refused grants:',
    formatTable(
      ['REASON', 'COUNT'],
      Object.entries(refusals).map(([reason, count]) => [reason, count.toLocaleString('en-US')]),
      '  none this month',
    ),
  ].join('\n');
}

async function listAllOrganizations(service: OrganizationService, caller: Caller, status: OrganizationStatus | undefined): Promise<Organization[]> {
  const all: Organization[] = [];
  let after: { createdAt: string; orgId: string } | undefined;
  for (;;) {
    const { organizations, hasMore } = await service.list(caller, { limit: PAGE_SIZE, status, after });
    all.push(...organizations);
    if (!hasMore) return all;
    const last = organizations[organizations.length - 1];
    after = { createdAt: last.createdAt, orgId: last.orgId };
  }
}

/** The organization the command's `<org>` argument names, by slug or id (exit 3 when there is none the caller may act in). */
const organizationNamed = ({ services, caller }: CommandContext, { args }: Invocation) => services.organizations.resolve(caller, args[0]);

type Transition = 'suspend' | 'reactivate' | 'decommission';

function transitionCommand(verb: Transition, summary: string): Command {
  const isFinal = verb === 'decommission';
  return {
    name: `orgs ${verb}`,
    summary,
    arguments: ['org'],
    ...(isFinal && {
      synopsis: '[--yes]',
      options: { yes: { type: 'boolean', short: 'y' } },
      optionHelp: { yes: 'do not ask for confirmation on a terminal' },
      confirmation: ({ args }: Invocation) =>
        `Decommission organization ${args[0]}? Every agent of it is decommissioned, its credentials and tokens die, and it cannot be undone. [y/N] `,
    }),
    run: async (context, invocation) => {
      const { orgId } = await organizationNamed(context, invocation);
      const org = await context.services.organizations[verb](context.caller, orgId);
      context.output.result(org, () => `organization ${org.slug} (${org.orgId}) is ${org.status}`);
    },
  };
}

export const orgCommands: Command[] = [
  {
    name: 'orgs create',
    summary: 'create an organization (a tenant), optionally with its first admin agent',
    synopsis:
      '--slug <slug> --name <name> [--monthly-tokens <n>] [--max-agents <n>] [--max-webhook-endpoints <n>] [--admin-name <name> --admin-scope <scope>...]',
    options: {
      slug: { type: 'string' },
      name: { type: 'string' },
      ...limitOptionDeclarations,
      'admin-name': { type: 'string' },
      'admin-scope': { type: 'string', multiple: true },
    },
    optionHelp: {
      slug: 'its short name, 2 to 63 characters of a-z, 0-9 and - (required; what --org names)',
      name: 'a name for people (required)',
      ...Object.fromEntries(LIMIT_OPTIONS.map(([option, , what]) => [option, `the most ${what}; no limit when left out`])),
      'admin-name': 'create its first admin agent with this name; its client id and secret are printed once',
      'admin-scope': "a scope the admin agent holds (agents:read, agents:write, …; never admin:orgs); repeat, or space-separate",
    },
    run: async ({ services, caller, output }, { options }) => {
      if (options.slug === undefined) throw usageError('--slug is required');
      if (options.name === undefined) throw usageError('--name is required');
      const adminScopes = listOption(options['admin-scope']);
      const adminName = textOption(options['admin-name']);
      if (adminScopes !== undefined && adminName === undefined) throw usageError('--admin-scope needs --admin-name');
      const input = parseWith(
        createOrganizationInput,
        {
          slug: textOption(options.slug),
          name: textOption(options.name),
          limits: limitsOf(options, false),
          admin: adminName === undefined ? undefined : { name: adminName, scopes: adminScopes ?? [] },
        },
        'The organization',
      );
      const created = await services.organizations.create(caller, input);
      const { organization, admin } = created;
      output.result(created, () => {
        const lines = ['organization created', describeOrganization(organization)];
        if (admin) {
          lines.push(
            `admin agent created. Store the secret now; it is not shown again.`,
            formatFields([
              ['agent id', admin.agent.agentId],
              ['scopes', admin.agent.scopes.join(' ') || '-'],
              ['credential id', admin.credential.credentialId],
              ['client_id', admin.credential.clientId],
              ['client_secret', admin.credential.clientSecret],
            ]),
          );
        }
        return lines.join('\n');
      });
    },
  },
  {
    name: 'orgs list',
    summary: 'list the organizations, oldest first',
    readsOnly: true,
    synopsis: '[--status active|suspended|decommissioned]',
    options: { status: { type: 'string' } },
    optionHelp: { status: 'only organizations in this status: active, suspended or decommissioned' },
    run: async ({ services, caller, output }, { options }) => {
      const status = textOption(options.status);
      if (status !== undefined && !STATUSES.includes(status as OrganizationStatus)) {
        throw usageError(`--status must be one of ${STATUSES.join(', ')}`);
      }
      const organizations = await listAllOrganizations(services.organizations, caller, status as OrganizationStatus | undefined);
      output.result(organizations, () =>
        formatTable(
          ['ORG ID', 'SLUG', 'NAME', 'STATUS', 'CREATED'],
          organizations.map((org) => [org.orgId, org.slug, org.name, org.status, org.createdAt]),
          'no organizations',
        ),
      );
    },
  },
  {
    name: 'orgs show',
    summary: 'show one organization, by slug or id',
    readsOnly: true,
    arguments: ['org'],
    run: async (context, invocation) => {
      const { orgId } = await organizationNamed(context, invocation);
      const org = await context.services.organizations.get(context.caller, orgId);
      context.output.result(org, () => describeOrganization(org));
    },
  },
  {
    name: 'orgs update',
    summary: "change an organization's slug, name or limits",
    arguments: ['org'],
    synopsis: '[--slug <slug>] [--name <name>] [--monthly-tokens <n>|none] [--max-agents <n>|none] [--max-webhook-endpoints <n>|none]',
    options: { slug: { type: 'string' }, name: { type: 'string' }, ...limitOptionDeclarations },
    optionHelp: {
      slug: 'the new slug (the platform organization keeps its own)',
      name: 'the new name',
      ...Object.fromEntries(LIMIT_OPTIONS.map(([option, , what]) => [option, `the most ${what} from now on; none: no limit`])),
    },
    run: async (context, invocation) => {
      const { options } = invocation;
      const patch = parseWith(
        organizationPatchInput,
        Object.fromEntries(
          Object.entries({ slug: textOption(options.slug), name: textOption(options.name), limits: limitsOf(options, true) }).filter(([, value]) => value !== undefined),
        ),
        'The change',
      );
      const { orgId } = await organizationNamed(context, invocation);
      const org = await context.services.organizations.update(context.caller, orgId, patch);
      context.output.result(org, () => `organization updated\n${describeOrganization(org)}`);
    },
  },
  transitionCommand('suspend', 'suspend an organization: its agents get no tokens, and their live tokens are revoked'),
  transitionCommand('reactivate', 'reactivate a suspended organization (new tokens only: revoked ones stay revoked)'),
  transitionCommand('decommission', 'decommission an organization (final: every agent of it is decommissioned)'),
  {
    name: 'orgs usage',
    summary: "this month's usage: tokens granted against the limit, the top agents, refused grants, agents against the limit",
    readsOnly: true,
    arguments: ['org'],
    run: async (context, invocation) => {
      const org = await organizationNamed(context, invocation);
      const usage = await context.services.organizations.usage(context.caller, org.orgId);
      context.output.result(usage, () => describeUsage(org, usage));
    },
  },
];
