/**
 * DATA_DIR's lock (storage/data-dir.ts): one holder at a time, stale holdings taken over,
 * another's holding never removed; and a DATA_DIR that cannot be used refused at once.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { DataDirError, prepareDataDir } from '../../server/src/storage/data-dir.js';
import { acquireDataDirLock, DataDirBusy, LOCK_FILE, readLiveHolder, removeStaleLock, type LockHolder } from '../../server/src/storage/data-dir-lock.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';

const freshDir = useTemporaryDirs('sentryagent-lock-');

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
    expect(await readLiveHolder(dir)).toBeUndefined();
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
    ['a pid now used by a process started later (reused)', () => ({ pid: process.ppid, processStart: 'not-its-start-time' })],
    ['this process, in a holding it no longer has', () => ({ pid: process.pid })],
    ['no process at all (pid 0)', () => ({ pid: 0 })],
    ['a process of an earlier boot of the machine', () => ({ pid: process.ppid, bootId: 'an-earlier-boot' })],
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

  it('takes over a lock held by a zombie (killed, not yet reaped by its parent)', async () => {
    const dir = freshDir();
    // sh starts a child that exits shortly, and meanwhile becomes sleep, which never reaps it.
    const parent = spawn('sh', ['-c', 'sleep 0.2 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = Number(await new Promise<string>((resolve) => parent.stdout.once('data', (chunk) => resolve(String(chunk)))));
      await waitFor(() => /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${zombie}/stat`, 'utf8')));
      writeHolder(dir, { pid: zombie });
      const lock = await acquireDataDirLock(dir, 'cli', dontWait);
      expect(lock.holder.pid).toBe(process.pid);
      lock.release();
    } finally {
      parent.kill('SIGKILL');
    }
  });

  it('does not remove the fresh lock of a process that took over a stale one first', async () => {
    const dir = freshDir();
    const dead: LockHolder = { pid: deadPid(), role: 'server', nonce: 'dead-holder' };
    writeHolder(dir, dead);
    // Another process saw the dead holder too, took the lock over and holds it now…
    const fresh = await acquireDataDirLock(dir, 'server', dontWait);
    // …when this one, late, removes what it judged stale: it checks again and leaves it.
    await removeStaleLock(dir, dead, { pid: process.pid, role: 'cli', nonce: 'late' });
    expect(JSON.parse(fs.readFileSync(lockFileOf(dir), 'utf8')).nonce).toBe(fresh.holder.nonce);
    await expect(acquireDataDirLock(dir, 'cli', dontWait)).rejects.toBeInstanceOf(DataDirBusy);
    fresh.release();
    expect(fs.readdirSync(dir)).toEqual([]);
  });

  it('judges a holder in another pid namespace (a container on the same volume) by its socket, not its pid', async () => {
    const dir = freshDir();
    const elsewhere = { pid: process.pid, pidNamespace: 'pid:[1]', nonce: 'in-a-container' };
    // A server whose socket answers is alive, whatever its pid means here.
    const socketPath = path.join(dir, 'other.sock');
    const listening = net.createServer().listen(socketPath);
    await new Promise((resolve) => listening.once('listening', resolve));
    writeHolder(dir, { ...elsewhere, role: 'server', socket: socketPath });
    await expect(acquireDataDirLock(dir, 'cli', dontWait)).rejects.toBeInstanceOf(DataDirBusy);
    // Once nothing listens there, the holding is stale.
    await new Promise((resolve) => listening.close(resolve));
    const lock = await acquireDataDirLock(dir, 'cli', dontWait);
    lock.release();
    // A command there cannot be judged at all: taken as alive, and the message says how to clear it.
    writeHolder(dir, { ...elsewhere, role: 'cli' });
    await expect(acquireDataDirLock(dir, 'cli', dontWait)).rejects.toThrow(
      `(pid ${process.pid} in another pid namespace; if it has stopped, remove ${lockFileOf(dir)})`,
    );
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

  it('refuses a DATA_DIR that others may write: they could plant a lock naming their own socket', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o777);
    expect(() => prepareDataDir(dir)).toThrow(`DATA_DIR ${dir} cannot be used: ${dir} is writable by other users (mode 777); make it owner-only: chmod 700 ${dir}`);
    fs.chmodSync(dir, 0o755);
    expect(() => prepareDataDir(dir)).not.toThrow();
  });

  it('refuses a DATA_DIR that its group may write, naming DATA_DIR', () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o770);
    expect(() => prepareDataDir(dir)).toThrow(`DATA_DIR ${dir} cannot be used: ${dir} is writable by other users (mode 770); make it owner-only: chmod 700 ${dir}`);
  });

  it('makes an existing DATA_DIR and everything in it owner-only, without following links', () => {
    const dir = freshDir();
    const outside = path.join(freshDir(), 'not-ours');
    fs.writeFileSync(outside, '');
    fs.chmodSync(outside, 0o644);
    fs.mkdirSync(path.join(dir, 'pgdata', 'pg_wal'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'pgdata', 'pg_wal', '000000010000000000000001'), 'a signing key, in clear');
    fs.writeFileSync(path.join(dir, 'pgdata', 'PG_VERSION'), '17');
    fs.symlinkSync(outside, path.join(dir, 'pgdata', 'link'));
    fs.chmodSync(path.join(dir, 'pgdata', 'pg_wal', '000000010000000000000001'), 0o666);
    fs.chmodSync(path.join(dir, 'pgdata', 'PG_VERSION'), 0o644);
    fs.chmodSync(path.join(dir, 'pgdata', 'pg_wal'), 0o755);
    fs.chmodSync(path.join(dir, 'pgdata'), 0o755);
    fs.chmodSync(dir, 0o755);

    prepareDataDir(dir);
    const modeOf = (file: string) => (fs.lstatSync(path.join(dir, file)).mode & 0o777).toString(8);
    expect(['.', 'pgdata', 'pgdata/pg_wal', 'pgdata/pg_wal/000000010000000000000001', 'pgdata/PG_VERSION'].map(modeOf)).toEqual([
      '700',
      '700',
      '700',
      '600',
      '600',
    ]);
    expect(fs.statSync(outside).mode & 0o777).toBe(0o644);
  });

  const runsAsRoot = process.getuid?.() === 0;
  (runsAsRoot ? it : it.skip)('refuses a DATA_DIR that belongs to another user (needs root to give one away)', () => {
    const dir = freshDir();
    fs.chownSync(dir, 65534, 65534);
    expect(() => prepareDataDir(dir)).toThrow(`DATA_DIR ${dir} cannot be used: ${dir} belongs to another user (uid 65534)`);
  });

  it('refuses at once a DATA_DIR the kernel will not create, a file, and a path under a file', () => {
    expect(() => prepareDataDir('/proc/nope/data')).toThrow(new DataDirError('DATA_DIR /proc/nope/data cannot be created: mkdir /proc/nope: ENOENT'));
    const file = path.join(freshDir(), 'file');
    fs.writeFileSync(file, '');
    expect(() => prepareDataDir(file)).toThrow(`DATA_DIR ${file} cannot be used: ${file} is not a directory`);
    expect(() => prepareDataDir(path.join(file, 'below'))).toThrow(`${file} is not a directory`);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
