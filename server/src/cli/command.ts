/**
 * What every operator command shares: its declaration (name, arguments, options), the
 * context it runs in (configuration, the database, output), the exit codes, and the one
 * error type that carries an exit code.
 */
import fs from 'node:fs';
import type { ParseArgsConfig } from 'node:util';
import type { Knex } from 'knex';
import { agentCaller, OPERATOR_CALLER, operatorIn, type Caller } from '../authorization/caller.js';
import { isCrossOrganization } from '../authorization/tenancy.js';
import { systemClock, type Clock } from '../clock.js';
import type { Config } from '../config.js';
import { createEgressFetch } from '../egress/egress-guard.js';
import { EvaluationService } from '../federation/evaluation-service.js';
import { PartnerKeys } from '../federation/partner-keys.js';
import { GitHubJwksCache } from '../github/jwks-cache.js';
import { loadKeyRing } from '../keys/key-ring.js';
import type { KeyRing } from '../keys/key-encryption.js';
import { SigningKeyService } from '../keys/signing-key-service.js';
import { createOperatorServices, type OperatorServices } from '../services.js';
import { ValidationFailed } from '../errors.js';
import { migrateToLatest, type Database } from '../storage/database.js';
import { WebhookService } from '../webhooks/webhook-service.js';
import type { Output } from './output.js';

export const EXIT = Object.freeze({
  ok: 0,
  /** The command ran and failed: the database is unreachable, the audit chain is broken, a bug. */
  failure: 1,
  /** Bad arguments, an invalid value, or bad configuration: fix the invocation. */
  usage: 2,
  notFound: 3,
  /** The resource's state forbids it (e.g. the agent has been decommissioned). */
  conflict: 4,
  /** The caller may not do it (no escalation); never the operator's answer, who holds every authority. */
  forbidden: 5,
});

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code = 'error',
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage, 'usage');

export interface CommandContext {
  readonly config: Config;
  readonly database: Database;
  readonly knex: Knex;
  readonly output: Output;
  /** Who runs the command: the operator, whose authority is the database's (tests may pass a lesser caller). */
  readonly caller: Caller;
  readonly clock: Clock;
  readonly services: OperatorServices;
  /**
   * Why a token would be granted or refused: partners' keys are fetched through the egress
   * guard (EGRESS_ALLOW_CIDRS) and GitHub's from GITHUB_OIDC_ISSUER, as the server does.
   */
  readonly evaluations: EvaluationService;
  /** The signing keys; its key-encryption keys are found on first use (which on the embedded database may create one). */
  readonly keys: SigningKeyService;
  /** The key-encryption keys (the server's, for a forwarded command), read on first call: what decrypts the active signing key to sign with. */
  readonly keyRing: () => KeyRing;
  /** Webhook endpoints: a URL is checked by the egress guard (EGRESS_ALLOW_CIDRS) when saved, as the server does. */
  readonly webhooks: WebhookService;
  /**
   * The organization `--org` named (commands made with `inOrganization`), when it was
   * given; `caller` is then confined to it. Unset: the services' default, the caller's own
   * organization (the operator's: the platform organization).
   */
  readonly orgId?: string;
}

export interface Invocation {
  /** Positional arguments after the command words, in the order of `Command.arguments`. */
  readonly args: string[];
  readonly options: Record<string, string | boolean | string[] | undefined>;
}

interface CommandInfo {
  /** The command words, e.g. `agents create`. */
  readonly name: string;
  readonly summary: string;
  /** Required positional arguments, by name, e.g. `['agentId']`. */
  readonly arguments?: readonly string[];
  /** Shown after the name and arguments in the usage line. */
  readonly synopsis?: string;
  readonly options?: NonNullable<ParseArgsConfig['options']>;
  /**
   * A question to ask on a terminal before running (a final change), unless `--yes` is
   * given; scripts, with no terminal, are not asked.
   */
  readonly confirmation?: (invocation: Invocation) => string;
  /** What each option means, for `<command> --help` (every option has one: a test checks). */
  readonly optionHelp?: Readonly<Record<string, string>>;
  /** Options that name a file: made absolute before a server on the embedded database runs the command in its own directory. */
  readonly pathOptions?: readonly string[];
}

/** Runs against the database, opened (and migrated) for it and closed after it. */
export interface DatabaseCommand extends CommandInfo {
  /** false: does not bring the schema up to date first (`migrate` does that itself). */
  readonly migratesFirst?: boolean;
  /**
   * Only reads: on an embedded DATA_DIR that holds no database it refuses, rather than
   * create an empty database to report on.
   */
  readonly readsOnly?: boolean;
  /** True when this invocation cannot run beside a server on the same embedded database (`migrate --down`). */
  needsDatabaseAlone?(invocation: Invocation): boolean;
  /** Resolves to the exit code; `undefined` means success. */
  run(context: CommandContext, invocation: Invocation): Promise<number | void>;
}

/** Takes the process over for good (`serve`). */
export interface ProcessCommand extends CommandInfo {
  start(): Promise<never>;
}

export type Command = DatabaseCommand | ProcessCommand;

/** A repeatable list option: `--scope a --scope b` or `--scope "a b"` or `--scope a,b`. */
export function listOption(value: string | boolean | string[] | undefined): string[] | undefined {
  if (value === undefined || typeof value === 'boolean') return undefined;
  return (Array.isArray(value) ? value : [value]).flatMap((item) => item.split(/[\s,]+/)).filter(Boolean);
}

/** `--org <slug|id>`: what `inOrganization` adds to a command. */
const ORG_OPTION = { org: { type: 'string' } } as const;
const ORG_OPTION_HELP = 'the organization, by slug or id: lists and creations are in it (else in the platform organization), and what belongs to another one is not found';

/**
 * The command with `--org <slug|id>`: the organization is resolved with the caller's
 * authority (exit 3 for one that does not exist or that the caller may not act in), and
 * the command runs confined to it: `context.orgId` names it (for a list or a creation),
 * and `context.caller` can reach nothing of another organization, which is then answered
 * "not found" like a resource that does not exist.
 */
export function inOrganization(command: DatabaseCommand): DatabaseCommand {
  if (command.options && 'org' in command.options) throw new Error(`${command.name} declares --org itself`);
  return {
    ...command,
    synopsis: [command.synopsis, '[--org <slug|id>]'].filter(Boolean).join(' '),
    options: { ...command.options, ...ORG_OPTION },
    optionHelp: { ...command.optionHelp, org: ORG_OPTION_HELP },
    run: async (context, invocation) => {
      const slugOrId = textOption(invocation.options.org);
      if (slugOrId === undefined) return command.run(context, invocation);
      const { orgId } = await context.services.organizations.resolve(context.caller, slugOrId);
      return command.run({ ...context, caller: confinedTo(context.caller, orgId), orgId }, invocation);
    },
  };
}

/**
 * The caller, able to act only in `orgId` (one it may act in). The operator becomes the
 * operator of that organization; an agent of it already is confined there, and a
 * platform admin:orgs agent keeps its scopes in it except admin:orgs, which is what
 * reaches across organizations.
 */
function confinedTo(caller: Caller, orgId: string): Caller {
  if (caller.kind === 'operator') return operatorIn(orgId);
  if (!isCrossOrganization(caller)) return caller;
  return agentCaller(caller.agentId, caller.scopes, { orgId, isPlatform: false });
}

export function textOption(value: string | boolean | string[] | undefined): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** The content of the file an option names (`--keys-file <path>`); one that cannot be read is a usage error. */
export function readOptionFile(file: string, option: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (error) {
    throw usageError(`cannot read --${option} ${file}: ${(error as NodeJS.ErrnoException).code ?? 'unreadable'}`);
  }
}

export interface RunOptions {
  /** The schema is known to be current (a server migrated at its start): no migration first. */
  readonly isSchemaCurrent?: boolean;
  readonly caller?: Caller;
  readonly clock?: Clock;
  /** The key-encryption keys, when the caller holds them already (the server that runs a forwarded command). */
  readonly keyRing?: KeyRing;
}

/**
 * Runs a database command on an open database, bringing its schema up to date first unless
 * the command says not to, or the caller knows it is.
 */
export async function runOnDatabase(
  command: DatabaseCommand,
  invocation: Invocation,
  config: Config,
  database: Database,
  output: Output,
  options: RunOptions = {},
): Promise<number> {
  if (!options.isSchemaCurrent && command.migratesFirst !== false) await migrateToLatest(database);
  const clock = options.clock ?? systemClock;
  let keyRing = options.keyRing;
  const loadRing = () => (keyRing ??= loadKeyRing(config).ring);
  const egress = createEgressFetch({ allowCidrs: config.egressAllowCidrs });
  const context: CommandContext = {
    config,
    database,
    knex: database.knex,
    output,
    caller: options.caller ?? OPERATOR_CALLER,
    clock,
    services: createOperatorServices(database.knex, clock),
    evaluations: new EvaluationService({
      knex: database.knex,
      clock,
      partnerKeys: new PartnerKeys({ fetchJson: egress.fetchJson, now: () => clock.now() }),
      githubJwks: new GitHubJwksCache({ issuer: config.githubOidcIssuer, now: () => clock.now() }),
      githubIssuer: config.githubOidcIssuer,
      oidcAudience: config.oidcAudience,
    }),
    keys: new SigningKeyService({ knex: database.knex, clock, keyRing: loadRing }),
    keyRing: loadRing,
    webhooks: new WebhookService({ knex: database.knex, clock, keyRing: lazyKeyRing(loadRing), egress: { checkUrl: egress.checkUrl } }),
  };
  try {
    return (await command.run(context, invocation)) ?? EXIT.ok;
  } catch (error) {
    throw inCommandLineWords(error, command);
  }
}

/** The key ring, read when a secret is first sealed: on the embedded database reading it may create a key-encryption key. */
function lazyKeyRing(load: () => KeyRing): KeyRing {
  return {
    get current() {
      return load().current;
    },
    get previous() {
      return load().previous;
    },
  };
}

/** A field of a service's input, as the option that carries it: `scopes` is `--scope`, `limits.maxAgents` is `--max-agents`. */
const OPTION_OF_FIELD: Readonly<Record<string, string>> = {
  scopes: 'scope',
  agentId: 'agent',
  allowedEvents: 'allow-event',
  'limits.monthlyTokens': 'monthly-tokens',
  'limits.maxAgents': 'max-agents',
  'limits.maxWebhookEndpoints': 'max-webhook-endpoints',
  'admin.name': 'admin-name',
  'admin.scopes': 'admin-scope',
  partnerId: 'partner',
  conditions: 'condition',
  audiences: 'audience',
  algorithms: 'algorithm',
  maxTokenAgeSeconds: 'max-token-age',
  requiredClaims: 'require',
  orgIds: 'open-to',
  keys: 'keys-file',
  maxTtlSeconds: 'max-ttl',
  eventTypes: 'events',
};

/** The option that carries a field's path (`admin.scopes.0`: `admin-scope`): the longest known prefix, else the first segment in kebab case. */
function optionOfPath(path: string): string {
  const segments = path.split('.');
  for (let length = segments.length; length > 0; length--) {
    const option = OPTION_OF_FIELD[segments.slice(0, length).join('.')];
    if (option) return option;
  }
  return segments[0].replace(/[A-Z]/g, (letter) => `-${letter.toLowerCase()}`);
}

/**
 * A validation error in the command line's words: `--scope` rather than the API's
 * `scopes.0`, when the field is one of the command's options.
 */
function inCommandLineWords(error: unknown, command: CommandInfo): unknown {
  if (!(error instanceof ValidationFailed)) return error;
  const issues = (error.details as { issues?: { path: string; message: string }[] } | undefined)?.issues;
  const first = issues?.[0];
  if (!first?.path) return error;
  const option = optionOfPath(first.path);
  if (!command.options || !(option in command.options)) return error;
  return new CliError(error.message.replace(`: ${first.path}: `, `: --${option}: `), EXIT.usage, 'validation_error');
}
