/**
 * Parsing a command line and running it: in the CLI's own process (`runCommandLine`), or
 * inside the server that holds the embedded database, for a CLI that handed its command
 * over through the operator socket (`runForwardedCommand`). Both run the same command
 * code with the same authority (`operator`), so a command's answer does not depend on
 * whether a server was running.
 */
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline/promises';
import { inspect, parseArgs } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { ServiceError, type ApiErrorCode } from '../errors.js';
import { SigningKeyUnavailable } from '../keys/key-encryption.js';
import { DataDirError } from '../storage/data-dir.js';
import { DataDirBusy } from '../storage/data-dir-lock.js';
import { isDatabaseUnavailable, openDatabase, type Database } from '../storage/database.js';
import { agentCommands } from './agent-commands.js';
import { auditCommands } from './audit-commands.js';
import { consoleCommand } from './console-commands.js';
import { credentialCommands } from './credential-commands.js';
import { evaluatePartnerCommand, evaluatePoliciesCommand } from './evaluation-commands.js';
import { federationCommands } from './federation-commands.js';
import { runOnEmbeddedDatabase } from './embedded-session.js';
import type { OperatorReply, OperatorRequest } from './operator-socket.js';
import { orgCommands } from './org-commands.js';
import { policyCommands } from './policy-commands.js';
import { keyCommands } from './key-commands.js';
import { serverCommands } from './server-commands.js';
import { webhookCommands } from './webhook-commands.js';
import { CliError, EXIT, runOnDatabase, usageError, type Command, type Invocation, type RunOptions } from './command.js';
import { bufferedOutput, type Output } from './output.js';

const COMMANDS: readonly Command[] = [
  ...serverCommands,
  ...keyCommands,
  ...orgCommands,
  ...agentCommands,
  ...credentialCommands,
  ...policyCommands,
  evaluatePoliciesCommand,
  ...federationCommands,
  evaluatePartnerCommand,
  ...webhookCommands,
  ...auditCommands,
  consoleCommand,
];

function usageLine(command: Command): string {
  return [`sentryagent-idp ${command.name}`, ...(command.arguments ?? []).map((name) => `<${name}>`), command.synopsis ?? '']
    .join(' ')
    .trim();
}

const USAGE = [
  'usage: sentryagent-idp <command> [options] [--json]',
  '',
  ...COMMANDS.map((command) => `  ${command.name.padEnd(32)} ${command.summary}`),
  '',
  'Configuration comes from the environment, as for the server (DATABASE_URL, DATA_DIR, SIGNING_ALG, …).',
  'On the embedded database, while a server runs on DATA_DIR, commands are run by that server.',
  '--json prints one JSON document for scripts. `sentryagent-idp <group> --help` lists a group\'s commands,',
  '`sentryagent-idp <command> --help` describes its options; `sentryagent-idp --version` prints the version.',
  'Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 not found, 4 conflict, 5 forbidden.',
].join('\n');

/** The version of this installation (package.json), for `--version`. */
function version(): string {
  for (const location of ['../../../package.json', '../../../../package.json']) {
    try {
      const manifest = JSON.parse(fs.readFileSync(new URL(location, import.meta.url), 'utf8')) as { name?: string; version?: string };
      if (manifest.name === 'sentryagent-idp' && manifest.version) return manifest.version;
    } catch {
      // not this location: the source tree (tests) and the build sit at different depths
    }
  }
  return 'unknown';
}

/** `agents --help`, or `agents` alone: the group's commands. */
function groupHelp(group: string): string | undefined {
  const members = COMMANDS.filter((command) => command.name.startsWith(`${group} `));
  if (members.length === 0) return undefined;
  return [`usage: sentryagent-idp ${group} <command> [options] [--json]`, '', ...members.map((command) => `  ${usageLine(command)}\n      ${command.summary}`)].join('\n');
}

/** `<command> --help`: its usage, what it does, and each option. */
function commandHelp(command: Command): string {
  const options = Object.entries(command.options ?? {}).map(([name, option]) => {
    const flag = `--${name}${option.type === 'string' ? ' <value>' : ''}${option.multiple ? ' (repeatable)' : ''}`;
    return `  ${flag.padEnd(34)} ${command.optionHelp?.[name] ?? ''}`.trimEnd();
  });
  return [`usage: ${usageLine(command)}`, `  ${command.summary}`, ...(options.length > 0 ? ['', 'options:', ...options] : []), '', '  --json  print one JSON document'].join('\n');
}

/** Node's parseArgs errors, in this tool's words. */
function describeParseError(error: Error & { code?: string }): string {
  const option = /'(-{1,2}[^' ]+)/.exec(error.message)?.[1];
  if (error.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && option) return `unknown option ${option}`;
  if (error.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && option) {
    return error.message.includes('argument missing') ? `${option} needs a value` : `${option} takes no value`;
  }
  if (error.code === 'ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL') return `unexpected argument ${/'([^']*)'/.exec(error.message)?.[1] ?? ''}`.trimEnd();
  return error.message.split('\n')[0];
}

/** The command the first words name: three (`federation partners add`), two (`agents create`) or one (`serve`). */
function findCommand(words: readonly string[]): Command | undefined {
  for (const length of [3, 2, 1]) {
    const command = COMMANDS.find((candidate) => candidate.name === words.slice(0, length).join(' '));
    if (command) return command;
  }
  return undefined;
}

function parseInvocation(command: Command, rest: string[]): Invocation & { isHelp: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError(`${describeParseError(error as Error)}\nusage: ${usageLine(command)}`);
  }
  const { help, ...options } = parsed.values;
  const expected = command.arguments ?? [];
  if (!help && parsed.positionals.length !== expected.length) {
    throw usageError(`expected ${expected.map((name) => `<${name}>`).join(' ') || 'no arguments'}\nusage: ${usageLine(command)}`);
  }
  return { args: parsed.positionals, options, isHelp: help === true };
}

type Parsed = { help: string; exitCode: number } | { command: Command; invocation: Invocation };

function parseCommandLine(argv: readonly string[]): Parsed {
  if (argv.length === 0 || ['help', '--help', '-h'].includes(argv[0])) {
    return { help: USAGE, exitCode: argv.length === 0 ? EXIT.usage : EXIT.ok };
  }
  if (argv[0] === '--version' || argv[0] === '-V') return { help: `sentryagent-idp ${version()}`, exitCode: EXIT.ok };
  const command = findCommand(argv);
  if (!command) {
    // A group of two words (`federation partners`), then of one.
    const subgroup = argv.length > 1 && !argv[1].startsWith('-') ? groupHelp(argv.slice(0, 2).join(' ')) : undefined;
    if (subgroup && (argv.length === 2 || ['--help', '-h'].includes(argv[2]))) return { help: subgroup, exitCode: argv.length === 2 ? EXIT.usage : EXIT.ok };
    const group = groupHelp(argv[0]);
    if (group && (argv.length === 1 || ['--help', '-h'].includes(argv[1]))) return { help: group, exitCode: argv.length === 1 ? EXIT.usage : EXIT.ok };
    throw usageError(`unknown command "${argv.slice(0, 2).join(' ')}"\n${group ?? USAGE}`);
  }
  const { isHelp, ...invocation } = parseInvocation(command, argv.slice(command.name.split(' ').length));
  if (isHelp) return { help: commandHelp(command), exitCode: EXIT.ok };
  return { command, invocation };
}

/** `argv` with the values of the command's path options resolved against this process's directory. */
function withAbsolutePaths(command: Command, argv: readonly string[]): string[] {
  const names = new Set((command.pathOptions ?? []).map((name) => `--${name}`));
  return argv.map((word, i) => {
    const [name, value] = word.split(/=(.*)/s, 2);
    if (value !== undefined && names.has(name)) return `${name}=${path.resolve(value)}`;
    return i > 0 && names.has(argv[i - 1]) && !word.includes('=') ? path.resolve(word) : word;
  });
}

/** Asks on the terminal; true only for an answer of y or yes. */
async function confirm(question: string): Promise<boolean> {
  const prompt = readline.createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^(y|yes)$/i.test((await prompt.question(question)).trim());
  } finally {
    prompt.close();
  }
}

/** The CLI: `argv` without `--json` (which `output` carries), configured by `env`. */
export async function runCommandLine(argv: readonly string[], output: Output, env: NodeJS.ProcessEnv): Promise<number> {
  const parsed = parseCommandLine(argv);
  if ('help' in parsed) {
    output.text(parsed.help);
    return parsed.exitCode;
  }
  const { command, invocation } = parsed;
  if (command.confirmation && invocation.options.yes !== true && process.stdin.isTTY && !(await confirm(command.confirmation(invocation)))) {
    throw new CliError('cancelled: nothing was changed', EXIT.failure, 'cancelled');
  }
  const config = loadConfig(env);
  if ('start' in command) return command.start();
  if (config.databaseUrl === undefined) {
    return runOnEmbeddedDatabase({ command, invocation, argv: withAbsolutePaths(command, argv), config, output });
  }
  const database = openDatabase({ databaseUrl: config.databaseUrl, poolMode: config.databasePoolMode, dataDir: config.dataDir, poolMax: 2 });
  try {
    return await runOnDatabase(command, invocation, config, database, output);
  } finally {
    await database.close();
  }
}

/** A command handed over through the operator socket, run by the server that holds the embedded database. */
export async function runForwardedCommand(request: OperatorRequest, config: Config, database: Database, options: RunOptions = {}): Promise<OperatorReply> {
  const { output, printed } = bufferedOutput(request.json);
  const exitCode = await runCommandOn(request.argv, config, database, output, { ...options, isSchemaCurrent: true });
  return { ...printed(), exitCode };
}

/**
 * A command line run on a database that is already open, its failures written to `output`
 * as the CLI writes them: what the server runs for a forwarded command, and what tests run
 * in process, as the operator or as a lesser caller.
 */
export async function runCommandOn(argv: readonly string[], config: Config, database: Database, output: Output, options: RunOptions = {}): Promise<number> {
  let exitCode: number;
  try {
    const parsed = parseCommandLine(argv);
    if ('help' in parsed) {
      output.text(parsed.help);
      exitCode = parsed.exitCode;
    } else if ('start' in parsed.command || parsed.command.needsDatabaseAlone?.(parsed.invocation)) {
      throw new CliError(`${parsed.command.name} needs DATA_DIR to itself, and this server (pid ${process.pid}) is running on it: stop the server first`, EXIT.failure);
    } else {
      exitCode = await runOnDatabase(parsed.command, parsed.invocation, config, database, output, options);
    }
  } catch (error) {
    const failure = toCliError(error);
    output.error(failure.code, failure.message);
    exitCode = failure.exitCode;
  }
  return exitCode;
}

const EXIT_CODE_OF: Partial<Record<ApiErrorCode, number>> = {
  VALIDATION_ERROR: EXIT.usage,
  NOT_FOUND: EXIT.notFound,
  CONFLICT: EXIT.conflict,
  FORBIDDEN: EXIT.forbidden,
  INSUFFICIENT_SCOPE: EXIT.forbidden,
};

/** Every failure as one clear line (two for usage errors) and an exit code a script can act on. */
export function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ConfigError || error instanceof DataDirError) return new CliError(error.message, EXIT.usage, 'configuration');
  if (error instanceof DataDirBusy) return new CliError(error.message, EXIT.failure, 'data_dir_busy');
  if (error instanceof SigningKeyUnavailable) return new CliError(error.message, EXIT.failure, 'signing_key_unavailable');
  if (error instanceof ServiceError) return new CliError(error.message, EXIT_CODE_OF[error.code] ?? EXIT.failure, error.code.toLowerCase());
  if (isDatabaseUnavailable(error)) {
    return new CliError(`cannot reach the database: ${(error as Error).message}`, EXIT.failure, 'database_unavailable');
  }
  return new CliError(`failed: ${describeUnexpected(error)}`, EXIT.failure);
}

/** One line for an unexpected failure: never `[object Object]`, and a database error without the SQL Knex prefixes to it. */
function describeUnexpected(error: unknown): string {
  if (!(error instanceof Error)) return inspect(error, { depth: 1, breakLength: Infinity });
  const sqlState = (error as { code?: unknown }).code;
  if (typeof sqlState === 'string' && /^[0-9A-Z]{5}$/.test(sqlState)) {
    return `database error ${sqlState}: ${error.message.split(' - ').pop()?.split('\n')[0]}`;
  }
  return error.message.split('\n')[0];
}
