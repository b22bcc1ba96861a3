/**
 * `scripts/release-actions.mjs` builds the tree each action's own repository holds. Each
 * tree is built outside the repository, where no node_modules can be reached, and its
 * dist/index.js is run as the runner runs `uses: sentryagent/<action>@v1`: proof that the
 * tree alone is the action.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { runAction, runPostStep } from '../support/run-action.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';
import { startIdTokenService, startStubIdp, type IdTokenService, type StubIdp } from './stub-servers.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const AGENT = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const ACCESS_TOKEN = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZ2VudCJ9.YWNjZXNzLXRva2Vu';
const EXPIRES_AT = '2099-01-01T00:00:00.000Z';
const TREE_FILES = ['LICENSE', 'README.md', 'action.yml', 'dist/index.js', 'dist/licenses.txt', 'dist/package.json'];

const temporaryDir = useTemporaryDirs('release-trees-');
let releaseRoot: string;
let idp: StubIdp;
let idTokens: IdTokenService;

function listFiles(dir: string, prefix = ''): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((entry) => (entry.isDirectory() ? listFiles(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`]))
    .sort();
}

/** Every folder Node would search for a bare import from `dir`. */
function reachableNodeModules(dir: string): string[] {
  const found: string[] = [];
  for (let at = dir; ; at = dirname(at)) {
    if (existsSync(join(at, 'node_modules'))) found.push(join(at, 'node_modules'));
    if (dirname(at) === at) return found;
  }
}

const runnerEnv = () => ({
  ACTIONS_ID_TOKEN_REQUEST_URL: idTokens.requestUrl,
  ACTIONS_ID_TOKEN_REQUEST_TOKEN: idTokens.requestToken,
  SENTRYAGENT_RETRY_MAX_MS: '2000',
  SENTRYAGENT_RETRY_BASE_MS: '20',
});

beforeAll(async () => {
  releaseRoot = join(temporaryDir(), 'release');
  await promisify(execFile)(process.execPath, [
    join(ROOT, 'scripts', 'release-actions.mjs'),
    '--out', releaseRoot,
    '--source-url', 'https://github.com/octo-org/sentryagent-idp',
    '--ref', 'v1.2.3',
  ]);
  idp = await startStubIdp({
    '/api/v1/oidc/token': [{ status: 200, body: { access_token: ACCESS_TOKEN, token_type: 'Bearer', expires_in: 3600, expires_at: EXPIRES_AT } }],
    '/api/v1/token/revoke': [{ status: 200 }],
    '/api/v1/oidc/register': [{ status: 201, body: { agentId: AGENT, name: 'deploy-bot', status: 'active', scopes: [], created: true } }],
  });
  idTokens = await startIdTokenService();
});
afterAll(async () => {
  await idp?.close();
  await idTokens?.close();
});

describe('release trees', () => {
  it('are built outside the repository, where no node_modules is reachable', () => {
    expect(releaseRoot.startsWith(ROOT)).toBe(false);
    expect(reachableNodeModules(releaseRoot)).toEqual([]);
  });

  it.each(['issue-token', 'register-agent'])('holds only what %s needs at run time, action.yml at its root', (name) => {
    const tree = join(releaseRoot, name);
    expect(listFiles(tree)).toEqual(TREE_FILES);
    expect(readFileSync(join(tree, 'action.yml'), 'utf8')).toBe(readFileSync(join(ROOT, 'actions', name, 'action.yml'), 'utf8'));
    expect(readFileSync(join(tree, 'dist', 'index.js')).equals(readFileSync(join(ROOT, 'actions', name, 'dist', 'index.js')))).toBe(true);
    expect(readFileSync(join(tree, 'LICENSE'), 'utf8')).toBe(readFileSync(join(ROOT, 'LICENSE'), 'utf8'));
  });

  it.each(['issue-token', 'register-agent'])("%s's README links only to absolute URLs and its own anchors", (name) => {
    const readme = readFileSync(join(releaseRoot, name, 'README.md'), 'utf8');
    const targets = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((match) => match[1]);
    expect(targets.length).toBeGreaterThan(0);
    for (const target of targets) expect(target).toMatch(/^(https:\/\/|#)/);
    expect(readme).toContain('](https://github.com/octo-org/sentryagent-idp/blob/v1.2.3/docs/actions.md)');
  });

  it("runs issue-token's tree as the runner does: masked token out, revoked by the post step", async () => {
    const options = {
      action: 'issue-token',
      actionDir: join(releaseRoot, 'issue-token'),
      inputs: { 'api-url': idp.url, 'agent-id': AGENT },
      env: runnerEnv(),
    };
    const main = await runAction(options);
    expect(main.commands.errors).toEqual([]);
    expect(main.exitCode).toBe(0);
    expect(main.stderr).toBe('');
    expect(main.outputs).toEqual({ 'access-token': ACCESS_TOKEN, 'expires-at': EXPIRES_AT });
    expect(main.commands.masks).toContain(ACCESS_TOKEN);
    const post = await runPostStep(main, options);
    expect(post.exitCode).toBe(0);
    expect(post.commands.warnings).toEqual([]);
    expect(idp.requestsTo('/api/v1/token/revoke').map((request) => request.body)).toEqual([`token=${ACCESS_TOKEN}`]);
  });

  it("runs register-agent's tree as the runner does", async () => {
    const run = await runAction({
      action: 'register-agent',
      actionDir: join(releaseRoot, 'register-agent'),
      inputs: { 'api-url': idp.url, name: 'deploy-bot' },
      env: runnerEnv(),
    });
    expect(run.commands.errors).toEqual([]);
    expect(run.exitCode).toBe(0);
    expect(run.stderr).toBe('');
    expect(run.outputs).toEqual({ 'agent-id': AGENT, created: 'true' });
    expect(idp.requestsTo('/api/v1/oidc/register')).toHaveLength(1);
  });
});
