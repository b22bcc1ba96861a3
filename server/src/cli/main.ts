/**
 * The operator's command line. It talks to the database directly, with the server's own
 * configuration (the environment, read by loadConfig), so it works before any token exists;
 * changes go through the same services and stores as the API's, audited as `operator`.
 * Exit codes: 0 success, 1 failure, 2 usage or configuration, 3 not found, 4 conflict.
 */
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig } from '../config.js';
import { ApiError, type ApiErrorCode } from '../http/errors.js';
import { isDatabaseUnavailable, migrateToLatest, openDatabase } from '../storage/database.js';
import { agentCommands } from './agent-commands.js';
import { auditCommands } from './audit-commands.js';
import { credentialCommands } from './credential-commands.js';
import { policyCommands } from './policy-commands.js';
import { serverCommands } from './server-commands.js';
import { CliError, EXIT, usageError, type Command, type Invocation } from './command.js';
import { Output } from './output.js';

const COMMANDS: readonly Command[] = [...serverCommands, ...agentCommands, ...credentialCommands, ...policyCommands, ...auditCommands];

function usageLine(command: Command): string {
  return [`sentryagent-idp ${command.name}`, ...(command.arguments ?? []).map((name) => `<${name}>`), command.synopsis ?? '']
    .join(' ')
    .trim();
}

const USAGE = [
  'usage: sentryagent-idp <command> [options] [--json]',
  '',
  ...COMMANDS.map((command) => `  ${command.name.padEnd(24)} ${command.summary}`),
  '',
  'Configuration comes from the environment, as for the server (DATABASE_URL, DATA_DIR, SIGNING_ALG, …).',
  '--json prints one JSON document for scripts. `sentryagent-idp <command> --help` shows a command\'s options.',
  'Exit codes: 0 success, 1 failure, 2 usage or configuration error, 3 not found, 4 conflict.',
].join('\n');

function findCommand(words: readonly string[]): Command | undefined {
  return COMMANDS.find((command) => command.name === words.slice(0, 2).join(' ')) ?? COMMANDS.find((command) => command.name === words[0]);
}

function parseInvocation(command: Command, rest: string[]): Invocation & { isHelp: boolean } {
  let parsed;
  try {
    parsed = parseArgs({ args: rest, options: { ...command.options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw usageError(`${(error as Error).message.split('\n')[0]}\nusage: ${usageLine(command)}`);
  }
  const { help, ...options } = parsed.values;
  const expected = command.arguments ?? [];
  if (!help && parsed.positionals.length !== expected.length) {
    throw usageError(`expected ${expected.map((name) => `<${name}>`).join(' ') || 'no arguments'}\nusage: ${usageLine(command)}`);
  }
  return { args: parsed.positionals, options, isHelp: help === true };
}

async function run(argv: readonly string[], output: Output): Promise<number> {
  if (argv.length === 0 || ['help', '--help', '-h'].includes(argv[0])) {
    output.text(USAGE);
    return argv.length === 0 ? EXIT.usage : EXIT.ok;
  }
  const command = findCommand(argv);
  if (!command) throw usageError(`unknown command "${argv.slice(0, 2).join(' ')}"\n${USAGE}`);
  const invocation = parseInvocation(command, argv.slice(command.name.split(' ').length));
  if (invocation.isHelp) {
    output.text(`usage: ${usageLine(command)}\n  ${command.summary}`);
    return EXIT.ok;
  }
  const config = loadConfig(process.env);
  if ('start' in command) return command.start();
  const database = openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, poolMax: 2 });
  try {
    if (command.migratesFirst !== false) await migrateToLatest(database);
    return (await command.run({ config, database, knex: database.knex, output }, invocation)) ?? EXIT.ok;
  } finally {
    await database.close();
  }
}

const EXIT_CODE_OF: Partial<Record<ApiErrorCode, number>> = { VALIDATION_ERROR: EXIT.usage, NOT_FOUND: EXIT.notFound, CONFLICT: EXIT.conflict };

/** Every failure as one clear line (two for usage errors) and an exit code a script can act on. */
function toCliError(error: unknown): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ConfigError) return new CliError(error.message, EXIT.usage, 'configuration');
  if (error instanceof ApiError) return new CliError(error.message, EXIT_CODE_OF[error.code] ?? EXIT.failure, error.code.toLowerCase());
  if (isDatabaseUnavailable(error)) {
    return new CliError(`cannot reach the database: ${(error as Error).message}`, EXIT.failure, 'database_unavailable');
  }
  return new CliError(`failed: ${(error as Error)?.message ?? String(error)}`, EXIT.failure);
}

// --json may stand anywhere, before the command words too.
const argv = process.argv.slice(2);
const output = new Output(argv.includes('--json'));
run(
  argv.filter((word) => word !== '--json'),
  output,
).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const failure = toCliError(error);
    output.error(failure.code, failure.message);
    process.exit(failure.exitCode);
  },
);
