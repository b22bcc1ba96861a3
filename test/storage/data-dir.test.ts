/**
 * DATA_DIR's lock (storage/data-dir.ts): one holder at a time, stale holdings taken over,
 * another's holding never removed; and a DATA_DIR that cannot be used refused at once.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { acquireDataDirLock, DataDirBusy, DataDirError, LOCK_FILE, prepareDataDir, readLiveHolder, type LockHolder } from '../../server/src/storage/data-dir.js';

const dirs: string[] = [];
const freshDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-lock-'));
  dirs.push(dir);
  return dir;
};
afterAll(() => dirs.forEach((dir) => fs.rmSync(dir, { recursive: true, force: true })));

const dontWait = { shouldWait: () => false, timeoutMs: 0 };
const lockFileOf = (dir: string) => path.join(dir, LOCK_FILE);
const writeHolder = (dir: string, holder: Partial<LockHolder> | string) =>
  fs.writeFileSync(lockFileOf(dir), typeof holder === 'string' ? holder : JSON.stringify({ role: 'server', nonce: 'earlier', ...holder }));
/** The pid of a process that has exited (and been reaped). */
const deadPid = () => spawnSync(process.execPath, ['-e', '']).pid as number;

describe('the DATA_DIR lock', () => {
  it('names its holder, refuses a second holder with that name, and is gone once released', async () => {
    const dir = freshDir();
    const lock = await acquireDataDirLock(dir, 'server', dontWait);
    lock.announce({ port: 3000, socket: '/x/operator.sock' });
    expect(JSON.parse(fs.readFileSync(lockFileOf(dir), 'utf8'))).toMatchObject({ pid: process.pid, role: 'server', port: 3000, socket: '/x/operator.sock' });
    expect(fs.statSync(lockFileOf(dir)).mode & 0o777).toBe(0o600);
    const second = acquireDataDirLock(dir, 'cli', dontWait);
    await expect(second).rejects.toBeInstanceOf(DataDirBusy);
    await expect(second).rejects.toThrow(`DATA_DIR ${dir} is in use by a running server (pid ${process.pid}, port 3000)`);
    lock.release();
    expect(fs.existsSync(lockFileOf(dir))).toBe(false);
    expect(readLiveHolder(dir)).toBeUndefined();
  });

  it('waits for a holder it was told to wait for, and takes the lock when it lets go', async () => {
    const dir = freshDir();
    const first = await acquireDataDirLock(dir, 'cli', dontWait);
    setTimeout(() => first.release(), 200);
    const startedAt = Date.now();
    const second = await acquireDataDirLock(dir, 'cli', { shouldWait: (holder) => holder.role === 'cli', timeoutMs: 10_000, pollMs: 10 });
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(150);
    expect(second.holder.pid).toBe(process.pid);
    second.release();
  });

  it('gives up waiting after its time-out', async () => {
    const dir = freshDir();
    const first = await acquireDataDirLock(dir, 'cli', dontWait);
    await expect(acquireDataDirLock(dir, 'server', { shouldWait: () => true, timeoutMs: 100, pollMs: 10 })).rejects.toThrow(
      `is in use by a sentryagent-idp command (pid ${process.pid})`,
    );
    first.release();
  });

  it.each([
    ['a process that has exited', () => ({ pid: deadPid() })],
    ['a pid now used by a process started later (reused)', () => ({ pid: process.pid === 1 ? 2 : 1, processStart: 'not-its-start-time' })],
    ['this process, in a holding it no longer has', () => ({ pid: process.pid })],
    ['no process at all (pid 0)', () => ({ pid: 0 })],
  ])('takes over a stale lock held by %s', async (_, holder) => {
    const dir = freshDir();
    writeHolder(dir, holder());
    const lock = await acquireDataDirLock(dir, 'cli', dontWait);
    expect(lock.holder.pid).toBe(process.pid);
    lock.release();
  });

  it('takes over a damaged lock file', async () => {
    const dir = freshDir();
    writeHolder(dir, '{"pid": 12');
    const lock = await acquireDataDirLock(dir, 'server', dontWait);
    lock.release();
    expect(fs.existsSync(lockFileOf(dir))).toBe(false);
  });

  it('never removes a lock that another holder took meanwhile', async () => {
    const dir = freshDir();
    const lock = await acquireDataDirLock(dir, 'cli', dontWait);
    const other = JSON.stringify({ pid: process.ppid, role: 'server', nonce: 'someone-else' });
    fs.writeFileSync(lockFileOf(dir), other);
    lock.release();
    expect(fs.readFileSync(lockFileOf(dir), 'utf8')).toBe(other);
  });
});

describe('prepareDataDir', () => {
  it('creates a missing DATA_DIR, and its missing parents, owner-only', () => {
    const dir = path.join(freshDir(), 'a', 'b');
    prepareDataDir(dir);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    expect(fs.statSync(path.dirname(dir)).mode & 0o777).toBe(0o700);
  });

  it('refuses at once a DATA_DIR the kernel will not create, a file, and a path under a file', () => {
    expect(() => prepareDataDir('/proc/nope/data')).toThrow(new DataDirError('DATA_DIR /proc/nope/data cannot be created: mkdir /proc/nope: ENOENT'));
    const file = path.join(freshDir(), 'file');
    fs.writeFileSync(file, '');
    expect(() => prepareDataDir(file)).toThrow(`DATA_DIR ${file} cannot be used: ${file} is not a directory`);
    expect(() => prepareDataDir(path.join(file, 'below'))).toThrow(`${file} is not a directory`);
  });
});
