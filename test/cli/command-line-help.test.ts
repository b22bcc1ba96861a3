/**
 * The command line as a newcomer meets it (issue 14, section 4): `--version`, `<group>
 * --help`, `<command> --help` describing every option, unknown options named cleanly,
 * validation errors in the command line's words, and a confirmation before a final change.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { runCommandOn } from '../../server/src/cli/command-line.js';
import { bufferedOutput } from '../../server/src/cli/output.js';
import { CLI, CLI_TEST_TIMEOUT_MS, cliDatabase, runCli, type CliDatabase } from '../support/cli-process.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

jest.setTimeout(CLI_TEST_TIMEOUT_MS);

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

async function cli(...argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const { output, printed } = bufferedOutput(argv.includes('--json'));
  const exitCode = await runCommandOn(argv.filter((arg) => arg !== '--json'), server.config, server.database, output, { isSchemaCurrent: true, clock: server.deps.clock });
  return { exitCode, ...printed() };
}

describe('help and version', () => {
  it('prints the version of package.json with --version', async () => {
    const { version } = JSON.parse(fs.readFileSync('package.json', 'utf8'));
    expect(await cli('--version')).toMatchObject({ exitCode: 0, stdout: `sentryagent-idp ${version}\n` });
  });

  it('lists a group\'s commands with <group> --help (and with the group alone, as a usage error)', async () => {
    const help = await cli('agents', '--help');
    expect(help.exitCode).toBe(0);
    for (const verb of ['create', 'list', 'show', 'update', 'suspend', 'reactivate', 'decommission']) expect(help.stdout).toContain(`sentryagent-idp agents ${verb}`);
    expect(help.stdout).not.toContain('policies add');
    expect((await cli('policies')).exitCode).toBe(2);
    expect((await cli('keys', '--help')).stdout).toContain('sentryagent-idp keys revoke <kid>');
  });

  it('describes every option of every command with <command> --help', async () => {
    const usage = await cli('--help');
    const names = [...usage.stdout.matchAll(/^ {2}(\S+(?: \S+){0,2})\s{2,}/gm)].map((match) => match[1]).filter((name) => !name.startsWith('-'));
    expect(names.length).toBeGreaterThan(15);
    for (const name of names) {
      const help = await cli(...name.split(' '), '--help');
      expect({ name, exitCode: help.exitCode }).toEqual({ name, exitCode: 0 });
      const options = [...help.stdout.matchAll(/^ {2}(--[a-z-]+)(.*)$/gm)].filter(([, flag]) => flag !== '--json');
      for (const [, flag, rest] of options) expect({ name, flag, described: rest.replace(/<value>|\(repeatable\)/g, '').trim().length > 10 }).toEqual({ name, flag, described: true });
    }
    expect((await cli('policies', 'add', '--help')).stdout).toMatch(/--tag <value> +only runs on this tag/);
    const evaluate = await cli('federation', 'evaluate', '--help');
    expect(evaluate.stdout).toMatch(/^usage: sentryagent-idp federation evaluate <partnerId> --token <jwt> \| --token-file <path> \| --claims-file <path> \[--agent <agentId>\] \[--org <slug\|id>\]\n/);
    expect(evaluate.stdout).toMatch(/--claims-file <value> +a JSON file holding the claims as an object: a dry run/);
    expect((await cli('policies', '--help')).stdout).toContain('sentryagent-idp policies evaluate --token <jwt> | --token-file <path> | --claims-file <path>');
  });
});

describe('mistakes, in the command line\'s words', () => {
  it('names an unknown option, or one missing its value, in one line', async () => {
    expect(await cli('agents', 'list', '--colour')).toMatchObject({ exitCode: 2, stderr: 'sentryagent-idp: unknown option --colour\nusage: sentryagent-idp agents list [--status active|suspended|decommissioned] [--org <slug|id>]\n' });
    expect((await cli('agents', 'create', '--name')).stderr).toMatch(/^sentryagent-idp: --name needs a value\n/);
  });

  it('names the option, not the API field, in a validation error', async () => {
    const reply = await cli('agents', 'create', '--name', 'x', '--scope', 'agents:read', '--scope', 'root');
    expect(reply.exitCode).toBe(2);
    expect(reply.stderr).toMatch(/^sentryagent-idp: The agent is invalid: --scope: /);
    expect(reply.stderr).not.toContain('scopes.');
    const policy = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--workflow-ref', 'nonsense', '--scope', '');
    expect(policy.stderr).toMatch(/^sentryagent-idp: The trust policy is invalid: --workflow-ref: must look like/);
  });
});

describe('agents decommission', () => {
  let database: CliDatabase;
  beforeAll(async () => {
    database = await cliDatabase();
  });
  afterAll(() => database.drop());

  /** Runs the CLI on a pseudo-terminal (util-linux `script`), typing `answer`. */
  function onTerminal(args: string[], answer: string): Promise<{ code: number | null; output: string }> {
    const command = [process.execPath, CLI, ...args].map((word) => `'${word}'`).join(' ');
    const child = spawn('script', ['-qfec', command, '/dev/null'], { env: { PATH: process.env.PATH, ...database.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      output += chunk;
      if (output.includes('[y/N]') && !child.stdin.writableEnded) child.stdin.end(`${answer}\n`);
    });
    return new Promise((resolve) => child.on('close', (code) => resolve({ code, output })));
  }

  it('asks on a terminal, does nothing unless told yes, and takes --yes; scripts are not asked', async () => {
    const create = async () => (await runCli(['agents', 'create', '--name', 'doomed', '--json'], database.env)).json().agentId as string;
    const agentId = await create();
    const declined = await onTerminal(['agents', 'decommission', agentId], 'n');
    expect(declined.output).toContain(`Decommission agent ${agentId}?`);
    expect(declined.code).toBe(1);
    expect((await runCli(['agents', 'show', agentId, '--json'], database.env)).json().status).toBe('active');
    const accepted = await onTerminal(['agents', 'decommission', agentId], 'y');
    expect(accepted.code).toBe(0);
    expect((await runCli(['agents', 'show', agentId, '--json'], database.env)).json().status).toBe('decommissioned');
    const other = await create();
    const unasked = await onTerminal(['agents', 'decommission', other, '--yes'], 'n');
    expect(unasked.output).not.toContain('[y/N]');
    expect(unasked.code).toBe(0);
    // No terminal (a script): not asked.
    expect((await runCli(['agents', 'decommission', await create()], database.env)).code).toBe(0);
  });
});
