/**
 * federation partners add | list | show | update | suspend | reactivate | remove, and
 * federation bindings add | list | show | remove, through the federation service.
 *
 * A condition is written `claim=value` (eq), `claim~=pattern` (glob: `*` within a
 * `/`-separated segment, `**` across) or `claim in a,b,c` (one of); the claim is a name or a
 * JSON Pointer (`/kubernetes.io/namespace`), whose `~0`/`~1` escapes is why glob is `~=`.
 */
import type { Caller } from '../authorization/caller.js';
import type { Condition } from '../federation/conditions.js';
import { createBindingInput, createPartnerInput, partnerPatchInput } from '../federation/federation-input.js';
import type { FederationService } from '../federation/federation-service.js';
import type { Binding, Partner } from '../federation/federation-store.js';
import { parseWith, requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { inOrganization, listOption, readOptionFile, textOption, usageError, type Command, type CommandContext, type DatabaseCommand, type Invocation } from './command.js';

const PAGE_SIZE = 100;
const CONDITION_SYNTAX = "claim=value (equal), claim~=pattern (glob: * within a /-separated segment, ** across) or 'claim in a,b' (one of); claim: a name or a JSON Pointer such as /kubernetes.io/namespace";

/** `claim=value`, `claim~=pattern` or `claim in a,b,c`, as a condition (the schema judges the parts). */
export function parseCondition(text: string, option: string): Condition {
  const within = /^(\S+) in (.+)$/s.exec(text);
  if (within) return { claim: within[1], op: 'in', value: within[2].split(',').map((value) => value.trim()) };
  const equals = text.indexOf('=');
  if (equals > 0) {
    const isGlob = text[equals - 1] === '~' && equals > 1;
    return isGlob ? { claim: text.slice(0, equals - 1), op: 'glob', value: text.slice(equals + 1) } : { claim: text.slice(0, equals), op: 'eq', value: text.slice(equals + 1) };
  }
  throw usageError(`--${option} ${JSON.stringify(text)}: expected ${CONDITION_SYNTAX}`);
}

const describeCondition = (condition: Condition) =>
  condition.op === 'in' ? `${condition.claim} in ${(condition.value as string[]).join(',')}` : `${condition.claim}${condition.op === 'glob' ? '~=' : '='}${condition.value as string}`;
const describeConditions = (conditions: readonly Condition[]) => conditions.map(describeCondition).join('; ') || '-';

/** A repeatable option, each value as given (no splitting: a value may hold commas or spaces). */
function repeated(value: string | boolean | string[] | undefined): string[] | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  return Array.isArray(value) ? value : [value];
}

function seconds(value: string | boolean | string[] | undefined, option: string): number | undefined {
  const text = textOption(value);
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text.trim())) throw usageError(`--${option} must be a whole number of seconds`);
  return Number(text);
}

function yesOrNo(value: string | boolean | string[] | undefined, option: string): boolean | undefined {
  const text = textOption(value);
  if (text === undefined) return undefined;
  if (text === 'true' || text === 'yes') return true;
  if (text === 'false' || text === 'no') return false;
  throw usageError(`--${option} must be true or false`);
}

/** `--keys-file <path>`: a JWK Set in a JSON file. */
function readKeySet(file: string): unknown {
  const content = readOptionFile(file, 'keys-file');
  try {
    return JSON.parse(content);
  } catch {
    throw usageError(`--keys-file ${file} is not JSON (a JWK Set: {"keys": [...]})`);
  }
}

/** `--open-to <org>`, repeated: organizations by slug or id. */
async function organizationIds({ services, caller }: CommandContext, values: string[] | undefined): Promise<string[] | undefined> {
  if (values === undefined) return undefined;
  const names = values.flatMap((value) => value.split(/[\s,]+/)).filter(Boolean);
  if (names.length === 1 && names[0] === 'none') return [];
  const ids: string[] = [];
  for (const name of names) ids.push((await services.organizations.resolve(caller, name)).orgId);
  return ids;
}

const conditionsOf = (values: string[] | undefined, option: string) => values?.map((value) => parseCondition(value, option));

function describePartner(partner: Partner): string {
  return formatFields([
    ['partner id', partner.partnerId],
    ['name', partner.name],
    ['preset', partner.preset],
    ['issuer', partner.issuer],
    ['status', partner.status],
    ['keys', partner.keys ? `inline (${partner.keys.keys.length}: ${partner.keys.keys.map((key) => key.kid ?? '(no kid)').join(', ')})` : (partner.jwksUri ?? "the issuer's OIDC discovery")],
    ['audiences', partner.audiences.join(' ')],
    ['algorithms', partner.algorithms.join(' ')],
    ['max token age', `${partner.maxTokenAgeSeconds} s`],
    ['single-use jti', partner.singleUseJti ? 'yes' : 'no'],
    ['required claims', describeConditions(partner.requiredClaims)],
    ['open to', partner.orgIds.join(' ') || '(no organization)'],
    ['created', partner.createdAt],
    ['updated', partner.updatedAt],
  ]);
}

function describeBinding(binding: Binding): string {
  return formatFields([
    ['binding id', binding.bindingId],
    ['partner', binding.partnerId],
    ['agent', binding.agentId],
    ['conditions', describeConditions(binding.conditions)],
    ['scopes', binding.scopes === null ? "(all of the agent's)" : binding.scopes.join(' ') || '(none)'],
    ['max ttl', binding.maxTtlSeconds === null ? "(the server's)" : `${binding.maxTtlSeconds} s`],
    ['organization', binding.orgId],
    ['created', binding.createdAt],
  ]);
}

async function listAllPartners(service: FederationService, caller: Caller): Promise<Partner[]> {
  const all: Partner[] = [];
  for (let afterId: string | undefined; ; ) {
    const { partners, hasMore } = await service.listPartners(caller, { afterId, limit: PAGE_SIZE });
    all.push(...partners);
    if (!hasMore) return all;
    afterId = partners[partners.length - 1].partnerId;
  }
}

async function listAllBindings(service: FederationService, caller: Caller, query: { orgId?: string; agentId?: string; partnerId?: string }): Promise<Binding[]> {
  const all: Binding[] = [];
  for (let afterId: string | undefined; ; ) {
    const { bindings, hasMore } = await service.listBindings(caller, { ...query, afterId, limit: PAGE_SIZE });
    all.push(...bindings);
    if (!hasMore) return all;
    afterId = bindings[bindings.length - 1].bindingId;
  }
}

const partnerIdOf = ({ args }: Invocation) => requireUuid(args[0], 'partnerId');

/** The fields `partners add` and `partners update` share. */
const PARTNER_OPTIONS = {
  name: { type: 'string' },
  issuer: { type: 'string' },
  'jwks-uri': { type: 'string' },
  'keys-file': { type: 'string' },
  audience: { type: 'string', multiple: true },
  algorithm: { type: 'string', multiple: true },
  'max-token-age': { type: 'string' },
  'single-use-jti': { type: 'string' },
  require: { type: 'string', multiple: true },
  'open-to': { type: 'string', multiple: true },
} as const;

const PARTNER_HELP = {
  name: 'a name for people',
  issuer: "the iss its tokens carry, matched exactly: https (http only on a loopback host); the github and buildkite presets name theirs",
  'jwks-uri': "where its keys are (else the issuer's OIDC discovery); not with --keys-file",
  'keys-file': 'a JSON file holding its public keys as a JWK Set {"keys": [...]} (a private cluster); not with --jwks-uri',
  audience: "an aud its tokens may carry; repeatable",
  algorithm: 'a signature algorithm it uses (RS256, ES256, EdDSA, PS256, …; never none or HS*); repeatable; default: the preset\'s',
  'max-token-age': "the oldest token accepted, in seconds after its iat (60 to 86400); default: the preset's",
  'single-use-jti': "true: each token (jti) is accepted once; default: the preset's",
  require: `a condition every token of it must meet, ${CONDITION_SYNTAX}; repeatable; github, gitlab, buildkite and sentryagent partners must pin their tenant (e.g. organization_slug=acme)`,
  'open-to': 'an organization (slug or id) that may bind its agents to it; repeatable',
};

const partnerCommands: DatabaseCommand[] = [
  {
    name: 'federation partners add',
    summary: 'add a federation partner: an external issuer whose tokens may act for agents (through bindings)',
    synopsis:
      '--preset github|gitlab|buildkite|circleci|kubernetes|spiffe|sentryagent|custom --name <name> --audience <aud>... [--issuer <url>] [--jwks-uri <url> | --keys-file <path>] ' +
      "[--algorithm <alg>]... [--max-token-age <s>] [--single-use-jti true|false] [--require <condition>]... [--open-to <org>]...",
    options: { preset: { type: 'string' }, ...PARTNER_OPTIONS },
    optionHelp: { preset: 'what it is: its defaults and which claims identify a workload (required)', ...PARTNER_HELP, name: 'a name for people (required)' },
    pathOptions: ['keys-file'],
    run: async (context, { options }) => {
      if (options.preset === undefined) throw usageError('--preset is required');
      if (options.name === undefined) throw usageError('--name is required');
      const keysFile = textOption(options['keys-file']);
      const input = parseWith(
        createPartnerInput,
        {
          preset: textOption(options.preset),
          name: textOption(options.name),
          issuer: textOption(options.issuer),
          jwksUri: textOption(options['jwks-uri']),
          keys: keysFile === undefined ? undefined : readKeySet(keysFile),
          audiences: repeated(options.audience) ?? [],
          algorithms: listOption(options.algorithm),
          maxTokenAgeSeconds: seconds(options['max-token-age'], 'max-token-age'),
          singleUseJti: yesOrNo(options['single-use-jti'], 'single-use-jti'),
          requiredClaims: conditionsOf(repeated(options.require), 'require'),
          orgIds: await organizationIds(context, repeated(options['open-to'])),
        },
        'The partner',
      );
      const partner = await context.services.federation.createPartner(context.caller, input);
      context.output.result(partner, () => `federation partner created\n${describePartner(partner)}`);
    },
  },
  {
    name: 'federation partners list',
    summary: 'list the federation partners',
    readsOnly: true,
    run: async ({ services, caller, output }) => {
      const partners = await listAllPartners(services.federation, caller);
      output.result(partners, () =>
        formatTable(
          ['PARTNER ID', 'NAME', 'PRESET', 'ISSUER', 'STATUS', 'ORGANIZATIONS'],
          partners.map((partner) => [partner.partnerId, partner.name, partner.preset, partner.issuer, partner.status, String(partner.orgIds.length)]),
          'no federation partners',
        ),
      );
    },
  },
  {
    name: 'federation partners show',
    summary: 'show one federation partner',
    readsOnly: true,
    arguments: ['partnerId'],
    run: async ({ services, caller, output }, invocation) => {
      const partner = await services.federation.getPartner(caller, partnerIdOf(invocation));
      output.result(partner, () => describePartner(partner));
    },
  },
  {
    name: 'federation partners update',
    summary: "change a federation partner (its live tokens are revoked: they were admitted under the old rules)",
    arguments: ['partnerId'],
    synopsis:
      '[--name <name>] [--issuer <url>] [--jwks-uri <url>|none] [--keys-file <path>|none] [--audience <aud>]... [--algorithm <alg>]... ' +
      '[--max-token-age <s>] [--single-use-jti true|false] [--require <condition>|none]... [--open-to <org>|none]...',
    options: PARTNER_OPTIONS,
    optionHelp: {
      ...PARTNER_HELP,
      'jwks-uri': "where its keys are from now on (clears inline keys); none: the issuer's OIDC discovery",
      'keys-file': 'a JSON file holding its public keys as a JWK Set (clears --jwks-uri); none: no inline keys',
      audience: 'replaces its audiences; repeatable',
      algorithm: 'replaces its algorithms; repeatable',
      require: `replaces its required claims, ${CONDITION_SYNTAX}; repeatable; none: no required claim`,
      'open-to': 'replaces the organizations (slug or id) that may bind to it; repeatable; none: no organization',
    },
    pathOptions: ['keys-file'],
    run: async (context, invocation) => {
      const { options } = invocation;
      const jwksUri = textOption(options['jwks-uri']);
      const keysFile = textOption(options['keys-file']);
      const requires = repeated(options.require);
      const patch = parseWith(
        partnerPatchInput,
        Object.fromEntries(
          Object.entries({
            name: textOption(options.name),
            issuer: textOption(options.issuer),
            jwksUri: jwksUri === 'none' ? null : jwksUri,
            keys: keysFile === 'none' ? null : keysFile === undefined ? undefined : readKeySet(keysFile),
            audiences: repeated(options.audience),
            algorithms: listOption(options.algorithm),
            maxTokenAgeSeconds: seconds(options['max-token-age'], 'max-token-age'),
            singleUseJti: yesOrNo(options['single-use-jti'], 'single-use-jti'),
            requiredClaims: requires?.length === 1 && requires[0] === 'none' ? [] : conditionsOf(requires, 'require'),
            orgIds: await organizationIds(context, repeated(options['open-to'])),
          }).filter(([, value]) => value !== undefined),
        ),
        'The change',
      );
      const partner = await context.services.federation.updatePartner(context.caller, partnerIdOf(invocation), patch);
      context.output.result(partner, () => `federation partner updated\n${describePartner(partner)}`);
    },
  },
  {
    name: 'federation partners suspend',
    summary: 'suspend a federation partner: its tokens are refused, and the live tokens issued through it revoked',
    arguments: ['partnerId'],
    run: async ({ services, caller, output }, invocation) => {
      const partner = await services.federation.suspendPartner(caller, partnerIdOf(invocation));
      output.result(partner, () => `federation partner ${partner.name} (${partner.partnerId}) is ${partner.status}`);
    },
  },
  {
    name: 'federation partners reactivate',
    summary: 'reactivate a suspended federation partner (new grants only: revoked tokens stay revoked)',
    arguments: ['partnerId'],
    run: async ({ services, caller, output }, invocation) => {
      const partner = await services.federation.reactivatePartner(caller, partnerIdOf(invocation));
      output.result(partner, () => `federation partner ${partner.name} (${partner.partnerId}) is ${partner.status}`);
    },
  },
  {
    name: 'federation partners remove',
    summary: 'delete a federation partner, its bindings, and the live tokens issued through them',
    arguments: ['partnerId'],
    synopsis: '[--yes]',
    options: { yes: { type: 'boolean', short: 'y' } },
    optionHelp: { yes: 'do not ask for confirmation on a terminal' },
    confirmation: ({ args }) => `Delete federation partner ${args[0]}? Its bindings are deleted and the tokens issued through them revoked. [y/N] `,
    run: async ({ services, caller, output }, invocation) => {
      const partner = await services.federation.deletePartner(caller, partnerIdOf(invocation));
      output.result(partner, () => `federation partner ${partner.name} (${partner.partnerId}) removed, with its bindings`);
    },
  },
];

const bindingIdOf = ({ args }: Invocation) => requireUuid(args[0], 'bindingId');

const bindingCommands: DatabaseCommand[] = [
  {
    name: 'federation bindings add',
    summary: "bind an agent to a federation partner: the partner's tokens meeting every condition act for the agent",
    synopsis: '--partner <partnerId> --agent <agentId> --condition <condition>... [--scope <scope>]... [--max-ttl <s>]',
    options: {
      partner: { type: 'string' },
      agent: { type: 'string' },
      condition: { type: 'string', multiple: true },
      scope: { type: 'string', multiple: true },
      'max-ttl': { type: 'string' },
    },
    optionHelp: {
      partner: "the partner, open to the agent's organization (required)",
      agent: 'the agent its tokens act for (required)',
      condition: `${CONDITION_SYNTAX}; repeatable, all must hold, and one must be on a claim the preset calls identifying (required)`,
      scope: "what its tokens may carry, a subset of the agent's scopes; repeatable; default: all of the agent's",
      'max-ttl': "the longest life of a token issued through it, in seconds (60 to 86400); default: the server's",
    },
    run: async ({ services, caller, output }, { options }) => {
      if (options.partner === undefined) throw usageError('--partner is required');
      if (options.agent === undefined) throw usageError('--agent is required');
      if (options.condition === undefined) throw usageError(`--condition is required: ${CONDITION_SYNTAX}`);
      const input = parseWith(
        createBindingInput,
        {
          partnerId: textOption(options.partner),
          agentId: textOption(options.agent),
          conditions: conditionsOf(repeated(options.condition), 'condition'),
          scopes: listOption(options.scope),
          maxTtlSeconds: seconds(options['max-ttl'], 'max-ttl'),
        },
        'The binding',
      );
      const binding = await services.federation.createBinding(caller, input);
      output.result(binding, () => `federation binding created\n${describeBinding(binding)}`);
    },
  },
  {
    name: 'federation bindings list',
    summary: "list an organization's federation bindings (--agent, --partner: only theirs)",
    readsOnly: true,
    synopsis: '[--agent <agentId>] [--partner <partnerId>]',
    options: { agent: { type: 'string' }, partner: { type: 'string' } },
    optionHelp: { agent: "only this agent's bindings", partner: 'only the bindings to this partner' },
    run: async ({ services, caller, orgId, output }, { options }) => {
      const agent = textOption(options.agent);
      const partner = textOption(options.partner);
      const bindings = await listAllBindings(services.federation, caller, {
        orgId,
        agentId: agent === undefined ? undefined : requireUuid(agent, '--agent'),
        partnerId: partner === undefined ? undefined : requireUuid(partner, '--partner'),
      });
      output.result(bindings, () =>
        formatTable(
          ['BINDING ID', 'PARTNER', 'AGENT', 'CONDITIONS'],
          bindings.map((binding) => [binding.bindingId, binding.partnerId, binding.agentId, describeConditions(binding.conditions)]),
          'no federation bindings',
        ),
      );
    },
  },
  {
    name: 'federation bindings show',
    summary: 'show one federation binding',
    readsOnly: true,
    arguments: ['bindingId'],
    run: async ({ services, caller, output }, invocation) => {
      const binding = await services.federation.getBinding(caller, bindingIdOf(invocation));
      output.result(binding, () => describeBinding(binding));
    },
  },
  {
    name: 'federation bindings remove',
    summary: 'delete a federation binding and revoke the live tokens issued through it',
    arguments: ['bindingId'],
    run: async ({ services, caller, output }, invocation) => {
      const binding = await services.federation.deleteBinding(caller, bindingIdOf(invocation));
      output.result(binding, () => `federation binding ${binding.bindingId} removed`);
    },
  },
];

/** Partners are the platform's (admin:orgs); bindings take `--org`, as policies do. */
export const federationCommands: Command[] = [...partnerCommands, ...bindingCommands.map(inOrganization)];
