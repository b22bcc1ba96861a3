/**
 * DATA_DIR: where the embedded database keeps its files, and the lock that makes one
 * process at a time their owner.
 *
 * PGlite has no locking between processes: two processes on the same files each keep
 * their own copy in memory and the last to write wins, silently. So whoever opens the
 * embedded database first takes `DATA_DIR/sentryagent.lock`, a file created atomically
 * (written aside, then hard-linked into place, which fails if it exists) that names its
 * holder: pid, role (`server` or `cli`), and once a server listens, its port and the
 * operator socket the CLI hands its commands to. A lock whose holder has died (no such
 * pid, or a pid now used by a process started later) is stale and taken over.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export const LOCK_FILE = 'sentryagent.lock';

/** DATA_DIR cannot be used (not creatable, not a directory, not writable); says why and names it. */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
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

export type LockRole = 'server' | 'cli';

export interface LockHolder {
  readonly pid: number;
  readonly role: LockRole;
  /** Set once the server listens. */
  readonly port?: number;
  /** The server's operator socket (see cli/operator-socket.ts), once it accepts commands. */
  readonly socket?: string;
  /** The holder's start time in clock ticks since boot (Linux), to tell a reused pid from the holder. */
  readonly processStart?: string;
  /** Tells this holding apart from an earlier one by the same pid. */
  readonly nonce: string;
}

function describeBusy(dataDir: string, holder: LockHolder): string {
  if (holder.role === 'server') {
    const port = holder.port === undefined ? 'still starting' : `port ${holder.port}`;
    return `DATA_DIR ${dataDir} is in use by a running server (pid ${holder.pid}, ${port}); stop it first, or set another DATA_DIR`;
  }
  return `DATA_DIR ${dataDir} is in use by a sentryagent-idp command (pid ${holder.pid}); wait for it to finish, or set another DATA_DIR`;
}

/** True when DATA_DIR holds an embedded database (PGlite has run initdb there). */
export function hasEmbeddedDatabase(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'));
}

/**
 * Creates DATA_DIR (owner-only) if it is missing, and checks that it is a writable
 * directory. Made one level at a time: Node's recursive mkdir loops forever where the
 * kernel refuses a directory with ENOENT under an existing parent (`/proc/nope`).
 */
export function prepareDataDir(dataDir: string): void {
  const missing: string[] = [];
  let existing = dataDir;
  for (;;) {
    try {
      if (!fs.statSync(existing).isDirectory()) throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: ${existing} is not a directory`);
      break;
    } catch (error) {
      if (error instanceof DataDirError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a file stands somewhere above; walking up names it.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: ${existing}: ${code ?? (error as Error).message}`);
      missing.unshift(existing);
      const parent = path.dirname(existing);
      if (parent === existing) throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: no such file system`);
      existing = parent;
    }
  }
  for (const directory of missing) {
    try {
      fs.mkdirSync(directory, { mode: 0o700 });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EEXIST' && fs.statSync(directory).isDirectory()) continue;
      throw new DataDirError(`DATA_DIR ${dataDir} cannot be created: mkdir ${directory}: ${code ?? (error as Error).message}`);
    }
  }
  try {
    fs.accessSync(dataDir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: it is not writable (${(error as NodeJS.ErrnoException).code})`);
  }
}

/**
 * From /proc/PID/stat (Linux): the process's state (field 3) and start time (field 22);
 * undefined where there is no /proc.
 */
function procStatOf(pid: number): { state: string; start: string } | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0], start: fields[19] };
  } catch {
    return undefined;
  }
}

/** Holdings of this process, by nonce: a lock naming our own pid is live only if we still hold it. */
const heldHere = new Set<string>();

function isAlive(holder: LockHolder): boolean {
  // kill(0) and kill(-1) would ask about a whole process group or every process.
  if (holder.pid <= 0) return false;
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

function readHolder(file: string): LockHolder | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const holder = JSON.parse(text) as LockHolder;
    if (Number.isInteger(holder.pid) && (holder.role === 'server' || holder.role === 'cli') && typeof holder.nonce === 'string') return holder;
  } catch {
    // Not ours, or damaged: treated as a dead holder below.
  }
  return { pid: -1, role: 'cli', nonce: `unreadable:${text}` };
}

function writeAside(dataDir: string, holder: LockHolder): string {
  const aside = path.join(dataDir, `.${LOCK_FILE}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`);
  fs.writeFileSync(aside, `${JSON.stringify(holder)}\n`, { mode: 0o600 });
  return aside;
}

/** Creates the lock file with its content in one step; false when it exists already. */
function tryCreate(dataDir: string, holder: LockHolder): boolean {
  let aside: string | undefined;
  try {
    aside = writeAside(dataDir, holder);
    fs.linkSync(aside, path.join(dataDir, LOCK_FILE));
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: creating ${LOCK_FILE}: ${(error as NodeJS.ErrnoException).code}`);
  } finally {
    if (aside) fs.rmSync(aside, { force: true });
  }
}

/**
 * Removes a stale lock, unless another process replaced it meanwhile: the lock is moved
 * aside first (atomic), and put back if what was moved is not the stale holding.
 */
function removeStale(dataDir: string, stale: LockHolder): void {
  const file = path.join(dataDir, LOCK_FILE);
  const moved = `${file}.stale.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  try {
    fs.renameSync(file, moved);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  try {
    if (readHolder(moved)?.nonce !== stale.nonce) fs.linkSync(moved, file);
  } catch {
    // A third process created a lock meanwhile: it holds DATA_DIR now; ours was stale.
  } finally {
    fs.rmSync(moved, { force: true });
  }
}

export interface DataDirLock {
  readonly holder: LockHolder;
  /** Adds what a server announces once it listens (port, operator socket). */
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
  const mine: LockHolder = { pid: process.pid, role, processStart: procStatOf(process.pid)?.start, nonce: crypto.randomUUID() };
  const startedAt = Date.now();
  let hasAnnouncedWait = false;
  for (;;) {
    if (tryCreate(dataDir, mine)) return holding(dataDir, mine);
    const holder = readHolder(path.join(dataDir, LOCK_FILE));
    if (holder === undefined) continue;
    if (!isAlive(holder)) {
      removeStale(dataDir, holder);
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
  const isStillOurs = () => {
    try {
      return readHolder(file)?.nonce === holder.nonce;
    } catch {
      return false;
    }
  };
  // A process that exits without closing (process.exit after a fatal error) lets go too.
  const releaseAtExit = () => release();
  const release = () => {
    if (!heldHere.delete(holder.nonce)) return;
    process.off('exit', releaseAtExit);
    if (isStillOurs()) fs.rmSync(file, { force: true });
  };
  process.on('exit', releaseAtExit);
  return {
    get holder() {
      return holder;
    },
    announce(update) {
      holder = { ...holder, ...update };
      const aside = writeAside(dataDir, holder);
      fs.renameSync(aside, file);
    },
    release,
  };
}

/** The current holder of DATA_DIR's lock if it is alive, else undefined. */
export function readLiveHolder(dataDir: string): LockHolder | undefined {
  const holder = readHolder(path.join(dataDir, LOCK_FILE));
  return holder && isAlive(holder) ? holder : undefined;
}
