/**
 * The embedded database's DATA_DIR shared by a running server and the operator CLI, as a
 * new user meets it in the README's GitHub Actions quick start: the CLI's commands reach
 * the running server (over the operator socket) instead of writing a copy of the files
 * that the server then overwrites; a second server refuses the directory; and the ways a
 * DATA_DIR can be wrong each fail at once with one clear line.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { bearer, getToken, json, send } from '../support/api.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { runCli } from '../support/cli-process.js';
import { runToExit, startServerProcess, type ServerProcess } from '../support/server-process.js';
import { acquireDataDirLock } from '../../server/src/storage/data-dir-lock.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';

// Real processes on the embedded database, on a busy 2-core machine.
jest.setTimeout(180_000);

const AUDIENCE = 'https://idp.test/github';
const freshDataDir = useTemporaryDirs('sentryagent-datadir-');
let github: FakeGitHubIssuer;

beforeAll(async () => {
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
});
afterAll(async () => {
  await github.close();
});

function adminOf(server: ServerProcess): { clientId: string; clientSecret: string } {
  const printed = /client_id:\s+(\S+)\s+client_secret:\s+(sk_live_\S+)/.exec(server.stdout());
  if (!printed) throw new Error(`no bootstrap credentials printed:\n${server.stdout()}`);
  return { clientId: printed[1], clientSecret: printed[2] };
}

const exchange = async (server: ServerProcess, agentId: string) =>
  send(server, '/api/v1/oidc/token', json('POST', { token: await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE }), agentId }));

describe('the README quick start on the embedded database, with the server running', () => {
  const dataDir = freshDataDir();
  const start = () => startServerProcess({ DATA_DIR: dataDir, GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE });
  const cli = (...args: string[]) => runCli(args, { DATA_DIR: dataDir });
  let admin: { clientId: string; clientSecret: string };
  let agentId = '';

  it('hands CLI commands to the running server: the API sees their result at once', async () => {
    const server = await start();
    try {
      admin = adminOf(server);
      // As typed in the README: AGENT_ID=$(npx sentryagent-idp agents create … --json | jq -r .agentId)
      const created = await cli('agents', 'create', '--name', 'deployer', '--scope', 'agents:read', '--json');
      expect(created).toMatchObject({ code: 0, stderr: '' });
      agentId = created.json().agentId;
      const added = await cli('policies', 'add', '--repository', 'octo-org/octo-repo', '--agent', agentId, '--branch', 'main');
      expect(added).toMatchObject({ code: 0, stderr: '' });
      expect(added.stdout).toMatch(/^trust policy created\n/);

      const token = await getToken(server, admin.clientId, admin.clientSecret);
      const agent = await send(server, `/api/v1/agents/${agentId}`, bearer(token));
      expect(agent).toMatchObject({ status: 200, body: { agentId, name: 'deployer', scopes: ['agents:read'] } });
      const policies = await send(server, `/api/v1/oidc/trust-policies?agentId=${agentId}`, bearer(token));
      expect(policies.body.data).toEqual([expect.objectContaining({ repository: 'octo-org/octo-repo', agentId, branch: 'main' })]);
      // The workflow of the quick start: its exchange is admitted, not "Trust policy violation".
      expect(await exchange(server, agentId)).toMatchObject({ status: 200, body: { token_type: 'Bearer', scope: 'agents:read' } });
      // A read through the CLI sees what the server holds, and the command was audited as the operator's.
      const listed = await cli('policies', 'list', '--agent', agentId, '--json');
      expect(listed.json()).toEqual([expect.objectContaining({ repository: 'octo-org/octo-repo', branch: 'main' })]);
      const audit = await send(server, `/api/v1/audit?agentId=${agentId}&type=trust_policy.created`, bearer(token));
      expect(audit.body.data).toEqual([expect.objectContaining({ type: 'trust_policy.created', actor: 'operator' })]);
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });

  it('keeps what the CLI did across a restart', async () => {
    const server = await start();
    try {
      expect(server.stdout()).not.toContain('client_secret');
      const token = await getToken(server, admin.clientId, admin.clientSecret);
      expect((await send(server, `/api/v1/agents/${agentId}`, bearer(token))).status).toBe(200);
      const policies = await send(server, `/api/v1/oidc/trust-policies?agentId=${agentId}`, bearer(token));
      expect(policies.body.data).toHaveLength(1);
      expect((await exchange(server, agentId)).status).toBe(200);
    } finally {
      expect(await server.stop()).toBe(0);
    }
    // With no server running, the CLI opens the database itself and finds the same.
    const listed = await cli('policies', 'list', '--agent', agentId, '--json');
    expect(listed).toMatchObject({ code: 0 });
    expect(listed.json()).toHaveLength(1);
  });

  it('refuses a second server on the same DATA_DIR with one line naming the first one\'s pid', async () => {
    const first = await start();
    try {
      const second = await runToExit({ DATA_DIR: dataDir, PORT: '0' });
      expect(second.code).toBe(1);
      expect(second.stderr.trim().split('\n')).toHaveLength(1);
      expect(second.stderr).toContain(`DATA_DIR ${dataDir} is in use by a running server (pid ${first.child.pid}`);
      // `sentryagent-idp serve` is the same server: refused the same way.
      const serve = await cli('serve');
      expect(serve.code).toBe(1);
      expect(serve.stderr).toContain(`(pid ${first.child.pid}`);
      // Reverting migrations under a running server would break it: refused, nothing reverted.
      const down = await cli('migrate', '--down');
      expect(down).toMatchObject({ code: 1, stderr: `sentryagent-idp: migrate needs DATA_DIR to itself: stop the server (pid ${first.child.pid}) first\n` });
      expect((await cli('migrate', '--json')).json()).toEqual({ applied: [] });
      // The socket that carries the operator's authority is the owner's alone.
      expect(fs.statSync(path.join(dataDir, 'control')).mode & 0o777).toBe(0o700);
      expect(fs.statSync(path.join(dataDir, 'control', 'operator.sock')).mode & 0o777).toBe(0o600);
      // Failures come back as they would from a CLI on the database: same line, same exit code.
      const missing = await cli('agents', 'show', '11111111-1111-4111-8111-111111111111');
      expect(missing).toMatchObject({ code: 3, stdout: '', stderr: 'sentryagent-idp: Agent not found.\n' });
      const missingJson = await cli('agents', 'show', '11111111-1111-4111-8111-111111111111', '--json');
      expect(missingJson).toMatchObject({ code: 3, stdout: '', stderr: '{"error":"not_found","message":"Agent not found."}\n' });
      // The first server is unharmed.
      expect((await send(first, '/readyz')).status).toBe(200);
    } finally {
      expect(await first.stop()).toBe(0);
    }
  });

  it('takes over the lock of a server that was killed', async () => {
    const killed = await start();
    expect(await killed.stop('SIGKILL')).toBeNull();
    expect(fs.existsSync(path.join(dataDir, 'sentryagent.lock'))).toBe(true);
    const server = await start();
    try {
      const token = await getToken(server, admin.clientId, admin.clientSecret);
      expect((await send(server, `/api/v1/agents/${agentId}`, bearer(token))).status).toBe(200);
      // The CLI reaches the new server, not the dead one's socket.
      const suspended = await cli('agents', 'suspend', agentId);
      expect(suspended).toMatchObject({ code: 0 });
      const refused = await send(server, '/api/v1/oidc/token', json('POST', { token: await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE }), agentId }));
      expect(refused).toMatchObject({ status: 403, body: { error: 'unauthorized_client' } });
    } finally {
      expect(await server.stop()).toBe(0);
    }
  });
});

describe('a DATA_DIR that cannot serve', () => {
  it('refuses a read-only command on a DATA_DIR that holds no database (exit 2, naming it) and creates nothing', async () => {
    const parent = freshDataDir();
    const dataDir = path.join(parent, 'not-yet');
    for (const args of [['audit', 'verify'], ['agents', 'list'], ['policies', 'list'], ['keys', 'list']]) {
      const result = await runCli(args, { DATA_DIR: dataDir });
      expect(result).toMatchObject({ code: 2, stdout: '' });
      expect(result.stderr).toBe(
        `sentryagent-idp: DATA_DIR ${dataDir} holds no database: nothing to read. Check DATA_DIR (or set DATABASE_URL); ` +
          'the server or a command that writes creates the database.\n',
      );
    }
    expect(fs.existsSync(dataDir)).toBe(false);
    // An existing but empty directory is refused the same way, and left empty.
    const empty = freshDataDir();
    expect((await runCli(['audit', 'verify', '--json'], { DATA_DIR: empty })).code).toBe(2);
    expect(fs.readdirSync(empty)).toEqual([]);
  });

  it('fails at once with one clear line on a DATA_DIR that cannot be created (/proc/nope)', async () => {
    const startedAt = Date.now();
    const [command, server] = await Promise.all([runCli(['agents', 'create', '--name', 'x'], { DATA_DIR: '/proc/nope' }), runToExit({ DATA_DIR: '/proc/nope', PORT: '0' })]);
    for (const result of [command, server]) {
      expect(result.code).toBe(2);
      expect(result.stderr).toBe('sentryagent-idp: DATA_DIR /proc/nope cannot be created: mkdir /proc/nope: ENOENT\n');
    }
    // It used to spin at 100% CPU for ever; "at once" is well under the time a start takes.
    expect(Date.now() - startedAt).toBeLessThan(15_000);
  });

  it('refuses a DATA_DIR that is a file', async () => {
    const file = path.join(freshDataDir(), 'a-file');
    fs.writeFileSync(file, '');
    for (const args of [['agents', 'create', '--name', 'x'], ['agents', 'list']]) {
      const result = await runCli(args, { DATA_DIR: file });
      expect(result).toMatchObject({ code: 2, stderr: `sentryagent-idp: DATA_DIR ${file} cannot be used: ${file} is not a directory\n` });
    }
  });

  it('serialises CLI commands that start at once on a fresh DATA_DIR: each succeeds, nothing is lost', async () => {
    const dataDir = freshDataDir();
    const names = ['first', 'second', 'third'];
    // They run one after another: allow each the time of a first run (creating the database) and more.
    const results = await Promise.all(names.map((name) => runCli(['agents', 'create', '--name', name, '--json'], { DATA_DIR: dataDir }, 150_000)));
    for (const result of results) expect(result).toMatchObject({ code: 0 });
    // Waiting for another command is said on stderr; no raw error (`[object Object]`, SQL) ever is.
    for (const result of results) expect(result.stderr).toMatch(/^(sentryagent-idp: waiting for another sentryagent-idp command \(pid \d+\) to finish with DATA_DIR…\n)?$/);
    const listed = await runCli(['agents', 'list', '--json'], { DATA_DIR: dataDir });
    expect(listed.json().map((agent: { name: string }) => agent.name).sort()).toEqual([...names].sort());
    expect(fs.existsSync(path.join(dataDir, 'sentryagent.lock'))).toBe(false);
  });

  it('has a server that starts while a command holds DATA_DIR wait for it, then start', async () => {
    const dataDir = freshDataDir();
    // This test process holds DATA_DIR as a command would, until the server says it waits.
    const command = await acquireDataDirLock(dataDir, 'cli', { shouldWait: () => false, timeoutMs: 0 });
    const server = await startServerProcess({ DATA_DIR: dataDir }, (output) => {
      if (output.includes('waiting for a sentryagent-idp command to finish with DATA_DIR')) command.release();
    });
    try {
      const waited = server.stdout().indexOf(`"holderPid":${process.pid},"msg":"waiting for a sentryagent-idp command to finish with DATA_DIR"`);
      expect(waited).toBeGreaterThan(-1);
      expect(server.stdout().indexOf('"msg":"listening"')).toBeGreaterThan(waited);
      const { clientId, clientSecret } = adminOf(server);
      expect((await send(server, '/api/v1/agents', bearer(await getToken(server, clientId, clientSecret)))).status).toBe(200);
    } finally {
      command.release();
      expect(await server.stop()).toBe(0);
    }
  });
});

describe('the operator socket with a DATA_DIR too long for a socket path', () => {
  it('moves the socket to a private temporary directory and still hands commands over', async () => {
    const dataDir = path.join(freshDataDir(), 'x'.repeat(110));
    const server = await startServerProcess({ DATA_DIR: dataDir });
    try {
      const holder = JSON.parse(fs.readFileSync(path.join(dataDir, 'sentryagent.lock'), 'utf8'));
      expect(holder.socket.startsWith(dataDir)).toBe(false);
      expect(fs.statSync(path.dirname(holder.socket)).mode & 0o777).toBe(0o700);
      const created = await runCli(['agents', 'create', '--name', 'long-path', '--json'], { DATA_DIR: dataDir });
      expect(created).toMatchObject({ code: 0 });
      const { clientId, clientSecret } = adminOf(server);
      const token = await getToken(server, clientId, clientSecret);
      expect((await send(server, `/api/v1/agents/${created.json().agentId}`, bearer(token))).status).toBe(200);
      expect(await server.stop()).toBe(0);
      expect(fs.existsSync(holder.socket)).toBe(false);
    } finally {
      await server.stop();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
