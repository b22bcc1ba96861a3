/**
 * The operator's command line. It talks to the database directly, with the server's own
 * configuration (the environment, read by loadConfig), so it works before any token exists;
 * changes go through the same services and stores as the API's, audited as `operator`. On
 * the embedded database, while a server runs on DATA_DIR, the server runs the command
 * (cli/embedded-session.ts). Exit codes: 0 success, 1 failure, 2 usage or configuration,
 * 3 not found, 4 conflict.
 */
import { runCommandLine, toCliError } from './command-line.js';
import { Output } from './output.js';

// What a command writes (the embedded database in DATA_DIR, its lock) is the user's alone.
process.umask(0o077);
// --json may stand anywhere, before the command words too.
const argv = process.argv.slice(2);
const output = new Output(argv.includes('--json'));
runCommandLine(
  argv.filter((word) => word !== '--json'),
  output,
  process.env,
).then(
  (code) => process.exit(code),
  (error: unknown) => {
    const failure = toCliError(error);
    output.error(failure.code, failure.message);
    process.exit(failure.exitCode);
  },
);
