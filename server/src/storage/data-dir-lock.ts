/**
 * DATA_DIR's lock: one process at a time owns the embedded database.
 *
 * PGlite has no locking between processes: two processes on the same files each keep
 * their own copy in memory and the last to write wins, silently. So whoever opens the
 * embedded database first takes `DATA_DIR/sentryagent.lock`, a file created with its
 * content in one step (written aside, then hard-linked into place, which fails if the
 * name exists) that names its holder: pid, role (`server` or `cli`), and for a server its
 * operator socket and port.
 *
 * A lock whose holder has died is stale and is taken over. Dead means: no such pid, a
 * zombie, a pid now used by a process started later, or a holding from before the
 * machine's last boot. A holder in another pid namespace (a container sharing the volume)
 * cannot be judged by its pid: a server is alive while its socket answers, anything
 * else is taken as alive. A stale lock is removed only under a second lock file
 * (`….takeover`), after checking again that it is still the same stale holding, so that
 * two processes taking over at once cannot remove each other's fresh lock.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DataDirError, isDataDirPresent, prepareDataDir } from './data-dir.js';

export const LOCK_FILE = 'sentryagent.lock';
const TAKEOVER_FILE = `${LOCK_FILE}.takeover`;

export type LockRole = 'server' | 'cli';

export interface LockHolder {
  readonly pid: number;
  readonly role: LockRole;
  /** Set once the server listens. */
  readonly port?: number;
  /** The server's operator socket (cli/operator-socket.ts) while it accepts commands. */
  readonly socket?: string;
  /** The holder's start time in clock ticks since boot (Linux), to tell a reused pid from the holder. */
  readonly processStart?: string;
  /** The holder's pid namespace and boot (Linux), where its pid means something. */
  readonly pidNamespace?: string;
  readonly bootId?: string;
  /** Tells this holding apart from an earlier one by the same pid. */
  readonly nonce: string;
}

/** The lock is held by a live process that the caller chose not to wait for (or waited for too long). */
export class DataDirBusy extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder,
  ) {
    super(describeBusy(dataDir, holder));
    this.name = 'DataDirBusy';
  }
}

function describeBusy(dataDir: string, holder: LockHolder): string {
  const elsewhere = isElsewhere(holder) ? ` in another pid namespace; if it has stopped, remove ${path.join(dataDir, LOCK_FILE)}` : '';
  if (holder.role === 'server') {
    const port = holder.port === undefined ? 'not listening yet' : `port ${holder.port}`;
    return `DATA_DIR ${dataDir} is in use by a running server (pid ${holder.pid}, ${port}${elsewhere}); stop it first, or set another DATA_DIR`;
  }
  return `DATA_DIR ${dataDir} is in use by a sentryagent-idp command (pid ${holder.pid}${elsewhere}); wait for it to finish, or set another DATA_DIR`;
}

const readOr = (read: () => string) => {
  try {
    return read().trim();
  } catch {
    return undefined;
  }
};
const HERE = {
  pidNamespace: readOr(() => fs.readlinkSync('/proc/self/ns/pid')),
  bootId: readOr(() => fs.readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')),
};
const differs = (ours: string | undefined, theirs: string | undefined) => ours !== undefined && theirs !== undefined && ours !== theirs;
const isElsewhere = (holder: LockHolder) => differs(HERE.pidNamespace, holder.pidNamespace);

/** From /proc/PID/stat (Linux): the process's state (field 3) and start time (field 22). */
function procStatOf(pid: number): { state: string; start: string } | undefined {
  const stat = readOr(() => fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  if (stat === undefined) return undefined;
  // The command name (field 2) is in parentheses and may hold spaces: count after it.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0], start: fields[19] };
}

/** Holdings of this process, by nonce: a lock naming our own pid is live only if we still hold it. */
const heldHere = new Set<string>();

function answers(socket: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socket);
    probe.once('connect', () => (probe.destroy(), resolve(true)));
    probe.once('error', (error: NodeJS.ErrnoException) => resolve(!['ECONNREFUSED', 'ENOENT', 'ENOTSOCK'].includes(error.code ?? '')));
  });
}

async function isAlive(holder: LockHolder): Promise<boolean> {
  // kill(0) and kill(-1) would ask about a whole process group or every process.
  if (holder.pid <= 0 || differs(HERE.bootId, holder.bootId)) return false;
  if (isElsewhere(holder)) return holder.socket === undefined || answers(holder.socket);
  if (holder.pid === process.pid) return heldHere.has(holder.nonce);
  try {
    process.kill(holder.pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const stat = procStatOf(holder.pid);
  if (stat === undefined) return true;
  // A killed process whose parent has not reaped it yet (a zombie) holds nothing.
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return holder.processStart === undefined || stat.start === holder.processStart;
}

function readHolder(dataDir: string, name: string): LockHolder | undefined {
  let text: string;
  try {
    text = fs.readFileSync(path.join(dataDir, name), 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: reading ${name}: ${code ?? (error as Error).message}`);
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (Number.isInteger(holder.pid) && (holder.role === 'server' || holder.role === 'cli') && typeof holder.nonce === 'string') return holder;
  } catch {
    // Not ours, or damaged: a dead holder.
  }
  return { pid: -1, role: 'cli', nonce: `unreadable:${text}` };
}

function writeAside(dataDir: string, holder: LockHolder): string {
  const aside = path.join(dataDir, `.${LOCK_FILE}.${process.pid}.${crypto.randomBytes(6).toString('hex')}`);
  fs.writeFileSync(aside, `${JSON.stringify(holder)}\n`, { mode: 0o600, flag: 'wx' });
  return aside;
}

/** Creates `name` with the holder as its content, in one step; false when the name exists already. */
function tryCreate(dataDir: string, name: string, holder: LockHolder): boolean {
  let aside: string | undefined;
  try {
    aside = writeAside(dataDir, holder);
    fs.linkSync(aside, path.join(dataDir, name));
    return true;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return false;
    throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: creating ${name}: ${code ?? (error as Error).message}`);
  } finally {
    if (aside) fs.rmSync(aside, { force: true });
  }
}

/**
 * Removes the lock if it is still the stale holding `stale`, under the takeover lock. A
 * takeover lock whose holder died (in the instant it held it) is removed for the next try.
 */
export async function removeStaleLock(dataDir: string, stale: LockHolder, taker: LockHolder): Promise<void> {
  if (!tryCreate(dataDir, TAKEOVER_FILE, taker)) {
    const other = readHolder(dataDir, TAKEOVER_FILE);
    if (other && !(await isAlive(other))) fs.rmSync(path.join(dataDir, TAKEOVER_FILE), { force: true });
    return;
  }
  try {
    if (readHolder(dataDir, LOCK_FILE)?.nonce === stale.nonce) fs.rmSync(path.join(dataDir, LOCK_FILE), { force: true });
  } finally {
    fs.rmSync(path.join(dataDir, TAKEOVER_FILE), { force: true });
  }
}

export interface DataDirLock {
  readonly holder: LockHolder;
  /** Says what a server offers (its operator socket, its port), or withdraws it (`socket: undefined`). */
  announce(update: Pick<LockHolder, 'port' | 'socket'>): void;
  release(): void;
}

export interface AcquireOptions {
  /** Whether to wait for this live holder to let go (else DataDirBusy at once). */
  readonly shouldWait: (holder: LockHolder) => boolean;
  /** How long to wait in all before DataDirBusy. */
  readonly timeoutMs: number;
  /** Called once, when the wait has lasted a second (to tell the user why nothing happens). */
  readonly onWaiting?: (holder: LockHolder) => void;
  readonly pollMs?: number;
}

export async function acquireDataDirLock(dataDir: string, role: LockRole, options: AcquireOptions): Promise<DataDirLock> {
  prepareDataDir(dataDir);
  const mine: LockHolder = { pid: process.pid, role, processStart: procStatOf(process.pid)?.start, ...HERE, nonce: crypto.randomUUID() };
  const startedAt = Date.now();
  let hasAnnouncedWait = false;
  for (;;) {
    if (tryCreate(dataDir, LOCK_FILE, mine)) return holding(dataDir, mine);
    const holder = readHolder(dataDir, LOCK_FILE);
    if (holder === undefined) continue;
    if (!(await isAlive(holder))) {
      await removeStaleLock(dataDir, holder, mine);
      continue;
    }
    const waitedMs = Date.now() - startedAt;
    if (!options.shouldWait(holder) || waitedMs >= options.timeoutMs) throw new DataDirBusy(dataDir, holder);
    if (!hasAnnouncedWait && waitedMs >= 1_000) {
      hasAnnouncedWait = true;
      options.onWaiting?.(holder);
    }
    await new Promise((resolve) => setTimeout(resolve, options.pollMs ?? 50));
  }
}

function holding(dataDir: string, initial: LockHolder): DataDirLock {
  const file = path.join(dataDir, LOCK_FILE);
  let holder = initial;
  heldHere.add(holder.nonce);
  // A process that exits without closing (process.exit after a fatal error) lets go too.
  const releaseAtExit = () => release();
  const release = () => {
    if (!heldHere.delete(holder.nonce)) return;
    process.off('exit', releaseAtExit);
    try {
      if (readHolder(dataDir, LOCK_FILE)?.nonce === holder.nonce) fs.rmSync(file, { force: true });
    } catch {
      // DATA_DIR went away: nothing left to release.
    }
  };
  process.on('exit', releaseAtExit);
  return {
    get holder() {
      return holder;
    },
    announce(update) {
      if (!heldHere.has(holder.nonce)) return;
      holder = { ...holder, ...update };
      fs.renameSync(writeAside(dataDir, holder), file);
    },
    release,
  };
}

/** The live holder of DATA_DIR's lock, if any; never creates DATA_DIR. */
export async function readLiveHolder(dataDir: string): Promise<LockHolder | undefined> {
  if (!isDataDirPresent(dataDir)) return undefined;
  const holder = readHolder(dataDir, LOCK_FILE);
  return holder && (await isAlive(holder)) ? holder : undefined;
}
