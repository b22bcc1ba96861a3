/**
 * The README's quick start, run as a user types it (issue 14, section 4): its shell blocks
 * are read from README.md, only the placeholders a user fills in are filled in (the port,
 * and the admin credentials the server printed), and bash runs the rest with curl and jq
 * against a real server process. A change to the README that breaks a command fails here.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { temporaryDataDir } from '../support/database.js';

jest.setTimeout(120_000);

/** The ```bash blocks of one README section. */
function shellBlocks(section: string): string[] {
  const readme = fs.readFileSync('README.md', 'utf8');
  const start = readme.indexOf(`\n## ${section}\n`);
  if (start < 0) throw new Error(`README.md has no section "${section}"`);
  const end = readme.indexOf('\n## ', start + 1);
  const text = readme.slice(start, end < 0 ? undefined : end);
  return [...text.matchAll(/```bash\n([\s\S]*?)```/g)].map((match) => match[1]);
}

describe("the README's quick start", () => {
  const [startBlock, sessionBlock] = shellBlocks('Quick start');
  let server: ServerProcess;
  beforeAll(async () => {
    server = await startServerProcess({ DATA_DIR: temporaryDataDir('sentryagent-readme-') });
  });
  afterAll(async () => {
    await server.stop();
  });

  it('starts as shown: npm start prints the bootstrap admin once, in the shape the README shows', () => {
    expect(startBlock.split('\n')[0]).toBe('npm start');
    const shown = startBlock.split('\n').filter((line) => line.startsWith('# ')).map((line) => line.slice(2).replace(/\s+\S*…$/, ''));
    for (const line of shown) expect(server.stdout()).toContain(line.trim());
  });

  it('runs as typed, with curl and jq: token, agent, credential, introspection, revocation, audit', async () => {
    const printed = /client_id:\s+(\S+)\s+client_secret:\s+(sk_live_\S+)/.exec(server.stdout());
    expect(printed).not.toBeNull();
    const filled = sessionBlock
      .replace('API=http://localhost:3000/api/v1', `API=${server.url}/api/v1`)
      .replace('ADMIN_ID=<client_id printed above>', `ADMIN_ID=${printed?.[1]}`)
      .replace('ADMIN_SECRET=<client_secret printed above>', `ADMIN_SECRET=${printed?.[2]}`);
    // Only the placeholders changed: everything else is the README's own text.
    expect(filled.split('\n').filter((line, i) => line !== sessionBlock.split('\n')[i])).toHaveLength(3);
    const { stdout } = await promisify(execFile)('bash', ['-e', '-o', 'pipefail', '-c', filled], { env: { PATH: process.env.PATH } });
    const active = [...stdout.matchAll(/"active": (true|false)/g)].map((match) => match[1]);
    expect(active).toEqual(['true', 'false']);
    expect(stdout).toContain('"scope": "agents:read"');
    for (const type of ['"token.revoked"', '"token.issued"', '"credential.created"', '"agent.created"']) expect(stdout).toContain(type);
    expect(stdout).toMatch(/"valid": true/);
  });
});
