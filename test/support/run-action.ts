/**
 * Runs a bundled action (`actions/<name>/dist/index.js`) the way the GitHub runner does:
 * a fresh Node process whose environment holds only what a runner provides — `INPUT_*`
 * (with action.yml defaults applied), `GITHUB_OUTPUT` / `GITHUB_STATE` / `GITHUB_ENV` files, the
 * `ACTIONS_ID_TOKEN_REQUEST_*` pair the caller supplies and, for a post step, the main
 * step's saved state as `STATE_*`. Nothing leaks in from the test process, so a suite run
 * inside GitHub Actions can never touch the real job's files or ID-token service.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ACTIONS_DIR = fileURLToPath(new URL('../../actions/', import.meta.url));

export interface RunActionOptions {
  /** Folder under actions/, e.g. `issue-token`. */
  readonly action: string;
  /** The action's folder (action.yml, dist/) when not actions/<action>, e.g. a release tree. */
  readonly actionDir?: string;
  /** `with:` values by input name; action.yml defaults fill the rest, as on a runner. */
  readonly inputs?: Readonly<Record<string, string>>;
  /** Added to (or, when undefined, removed from) the runner environment. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Saved state to export as `STATE_*`: set for a post step (see runPostStep). */
  readonly state?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export interface WorkflowCommands {
  /** Decoded messages of `::error::`, `::warning::`, `::add-mask::` lines, in order. */
  readonly errors: string[];
  readonly warnings: string[];
  readonly masks: string[];
}

export interface ActionRun {
  readonly exitCode: number | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Parsed from the GITHUB_OUTPUT file. */
  readonly outputs: Record<string, string>;
  /** Parsed from the GITHUB_STATE file; what a post step receives as STATE_*. */
  readonly state: Record<string, string>;
  /** Parsed from the GITHUB_ENV file; what the job's later steps receive as environment. */
  readonly env: Record<string, string>;
  readonly commands: WorkflowCommands;
}

/** The runner's name for an input's variable: spaces become `_`, hyphens stay. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** The environment a hosted runner gives every step, before inputs and state. */
export function runnerBaseEnv(workDir: string): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    ...(process.env.SYSTEMROOT !== undefined && { SYSTEMROOT: process.env.SYSTEMROOT }),
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    RUNNER_OS: 'Linux',
    RUNNER_TEMP: workDir,
    GITHUB_WORKSPACE: workDir,
    GITHUB_REPOSITORY: 'octo-org/octo-repo',
    GITHUB_REF: 'refs/heads/main',
    GITHUB_EVENT_NAME: 'push',
  };
}

export async function runAction(options: RunActionOptions): Promise<ActionRun> {
  const workDir = mkdtempSync(join(tmpdir(), `run-${options.action}-`));
  const outputFile = join(workDir, 'output');
  const stateFile = join(workDir, 'state');
  const envFile = join(workDir, 'env');
  writeFileSync(outputFile, '');
  writeFileSync(stateFile, '');
  writeFileSync(envFile, '');
  const actionDir = options.actionDir ?? join(ACTIONS_DIR, options.action);
  const env: Record<string, string | undefined> = {
    ...runnerBaseEnv(workDir),
    GITHUB_OUTPUT: outputFile,
    GITHUB_STATE: stateFile,
    GITHUB_ENV: envFile,
  };
  const inputs = { ...readInputDefaults(actionDir), ...options.inputs };
  for (const [name, value] of Object.entries(inputs)) env[inputEnvName(name)] = value;
  for (const [name, value] of Object.entries(options.state ?? {})) env[`STATE_${name}`] = value;
  Object.assign(env, options.env);
  try {
    const { exitCode, stdout, stderr } = await spawnNode(
      join(actionDir, 'dist', 'index.js'),
      dropUndefined(env),
      workDir,
      options.timeoutMs ?? 20_000,
    );
    return {
      exitCode,
      stdout,
      stderr,
      outputs: parseFileCommands(readFileSync(outputFile, 'utf8')),
      state: parseFileCommands(readFileSync(stateFile, 'utf8')),
      env: parseFileCommands(readFileSync(envFile, 'utf8')),
      commands: parseWorkflowCommands(stdout),
    };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The job's post step for the same action, with the state the main step saved. */
export async function runPostStep(main: ActionRun, options: RunActionOptions): Promise<ActionRun> {
  return runAction({ ...options, state: { ...main.state, ...options.state } });
}

/** Reads `name<<delimiter … delimiter` (and legacy `name=value`) entries of GITHUB_OUTPUT / GITHUB_STATE / GITHUB_ENV. */
export function parseFileCommands(text: string): Record<string, string> {
  const values: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i += 1) {
    const line = lines[i];
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const end = lines.indexOf(delimiter, i + 1);
      if (end === -1) throw new Error(`Unterminated value of ${name} in a file command`);
      values[name] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else if (line.includes('=')) {
      values[line.slice(0, line.indexOf('='))] = line.slice(line.indexOf('=') + 1);
    }
  }
  return values;
}

/** Collects the workflow commands of a step's stdout, unescaping their data as the runner does. */
export function parseWorkflowCommands(stdout: string): WorkflowCommands {
  const commands: WorkflowCommands = { errors: [], warnings: [], masks: [] };
  const lists: Record<string, string[]> = {
    error: commands.errors,
    warning: commands.warnings,
    'add-mask': commands.masks,
  };
  for (const line of stdout.split(/\r?\n/)) {
    const match = /^::([a-z-]+)(?: [^:]*)?::(.*)$/.exec(line);
    const list = match && lists[match[1]];
    if (list) list.push(match[2].replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%'));
  }
  return commands;
}

/**
 * Input defaults from `<actionDir>/action.yml`, as the runner applies them. A small
 * reader for the plain layout of our own action.yml files (two-space indents, scalar
 * defaults), not a YAML parser.
 */
export function readInputDefaults(actionDir: string): Record<string, string> {
  const lines = readFileSync(join(actionDir, 'action.yml'), 'utf8').split(/\r?\n/);
  const defaults: Record<string, string> = {};
  let inInputs = false;
  let input: string | undefined;
  for (const line of lines) {
    if (/^\S/.test(line)) {
      inInputs = /^inputs:\s*$/.test(line);
      continue;
    }
    if (!inInputs) continue;
    const name = /^ {2}([\w-]+):\s*$/.exec(line);
    if (name) input = name[1];
    const value = /^ {4}default:\s*(.*?)\s*$/.exec(line);
    if (value && input) defaults[input] = value[1].replace(/^'(.*)'$|^"(.*)"$/, '$1$2');
  }
  return defaults;
}

function dropUndefined(env: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

function spawnNode(
  script: string,
  env: Record<string, string>,
  cwd: string,
  timeoutMs: number,
): Promise<{ exitCode: number | null; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${script} did not finish within ${timeoutMs} ms.\nstdout:\n${stdout}\nstderr:\n${stderr}`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (exitCode) => {
      clearTimeout(timer);
      resolvePromise({ exitCode, stdout, stderr });
    });
  });
}
