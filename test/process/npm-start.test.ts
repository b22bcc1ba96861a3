/**
 * `npm start` under a supervisor that signals the process it started, npm: SIGTERM must
 * reach the server (npm forwards it to its script's shell, which must have become node)
 * and npm must exit with the server's code, leaving no server behind.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it, jest } from '@jest/globals';
import { watchProcess } from '../support/server-process.js';
import { send } from '../support/api.js';

// npm, the build check and the embedded database's first start on a busy 2-core machine.
jest.setTimeout(120_000);

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-npm-start-'));
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start', () => {
  it('stops the server on SIGTERM to npm, and exits with its code', async () => {
    const npm = watchProcess(['start'], { HOME: process.env.HOME, DATA_DIR: dataDir, DATABASE_URL: undefined }, 'npm');
    let serverPid = 0;
    try {
      const [line] = await npm.waitForStdout(/^\{[^\n]*"msg":"listening"[^\n]*$/m, 90_000);
      const { pid, port } = JSON.parse(line);
      serverPid = pid;
      expect(pid).not.toBe(npm.child.pid);
      expect((await send({ url: `http://127.0.0.1:${port}` }, '/healthz')).status).toBe(200);
      npm.child.kill('SIGTERM');
      // 'exit', not 'close': a server left behind would hold npm's output open.
      const exit = await new Promise<number | string | null>((resolve) => {
        npm.child.once('exit', (code) => resolve(code));
        setTimeout(() => resolve('npm still running 30 s after SIGTERM'), 30_000).unref();
      });
      expect({ exit, isServerAlive: isAlive(serverPid) }).toEqual({ exit: 0, isServerAlive: false });
      await npm.exited;
      expect(npm.stdout()).toContain('"msg":"shutting down: finishing in-flight requests"');
    } finally {
      if (npm.child.exitCode === null) npm.child.kill('SIGKILL');
      if (serverPid && isAlive(serverPid)) process.kill(serverPid, 'SIGKILL');
    }
  });
});
