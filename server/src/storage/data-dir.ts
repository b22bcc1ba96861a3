/**
 * DATA_DIR: where the embedded database keeps its files (with the signing keys in them,
 * in clear in the WAL), DATA_DIR's lock and the operator socket. It must be the running
 * user's alone: whoever can write it could plant a lock that points the CLI at their own
 * socket, or swap the socket's directory; whoever can read it can read the keys. So it is
 * created owner-only, an existing one that belongs to another user or that others can
 * write is refused, and everything in it is made owner-only at every start (files that
 * an earlier version, or PGlite, left readable by others).
 */
import fs from 'node:fs';
import path from 'node:path';

/** DATA_DIR cannot be used (not creatable, not a directory, not the user's own); says why and names it. */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

/** True when DATA_DIR holds an embedded database (PGlite has run initdb there). */
export function hasEmbeddedDatabase(dataDir: string): boolean {
  return fs.existsSync(path.join(dataDir, 'pgdata', 'PG_VERSION'));
}

const errorCode = (error: unknown) => (error as NodeJS.ErrnoException).code ?? (error as Error).message;

/** Refuses a directory that another user owns or that others may write. */
export function checkOwnerOnly(directory: string, what: string): void {
  const stat = fs.lstatSync(directory);
  if (!stat.isDirectory()) throw new DataDirError(`${what} cannot be used: ${directory} is not a directory`);
  const uid = process.getuid?.();
  if (uid !== undefined && stat.uid !== uid) {
    throw new DataDirError(`${what} cannot be used: ${directory} belongs to another user (uid ${stat.uid})`);
  }
  if ((stat.mode & 0o022) !== 0) {
    throw new DataDirError(
      `${what} cannot be used: ${directory} is writable by other users (mode ${(stat.mode & 0o777).toString(8)}); make it owner-only: chmod 700 ${directory}`,
    );
  }
}

/**
 * Whether DATA_DIR exists (then checked: a directory, the user's own), without creating it.
 * A file standing where a directory of the path should be is named.
 */
export function isDataDirPresent(dataDir: string): boolean {
  let existing = dataDir;
  for (;;) {
    try {
      if (!fs.statSync(existing).isDirectory()) throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: ${existing} is not a directory`);
      break;
    } catch (error) {
      if (error instanceof DataDirError) throw error;
      const code = errorCode(error);
      // ENOTDIR: a file stands somewhere above; walking up names it.
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: ${existing}: ${code}`);
      const parent = path.dirname(existing);
      if (parent === existing) throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: no such file system`);
      existing = parent;
    }
  }
  if (existing !== dataDir) return false;
  checkOwnerOnly(dataDir, `DATA_DIR ${dataDir}`);
  return true;
}

/**
 * Takes every permission of group and others off `directory` and everything under it,
 * without following symbolic links. PGlite sets the modes of its files itself (0666 for
 * those initdb made, 0644 for some it rewrites at each start), which no umask reaches.
 * A file that vanishes meanwhile (the database's own temporary files) is no matter.
 */
export function restrictToOwner(directory: string, what: string): void {
  const restrict = (file: string): void => {
    let stat: fs.Stats;
    try {
      stat = fs.lstatSync(file);
      if (stat.isSymbolicLink()) return;
      if ((stat.mode & 0o077) !== 0) fs.chmodSync(file, stat.mode & 0o700);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return;
      throw new DataDirError(`${what} cannot be made owner-only: ${file}: ${errorCode(error)}`);
    }
    if (!stat.isDirectory()) return;
    let entries: string[];
    try {
      entries = fs.readdirSync(file);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return;
      throw new DataDirError(`${what} cannot be made owner-only: ${file}: ${errorCode(error)}`);
    }
    for (const entry of entries) restrict(path.join(file, entry));
  };
  restrict(directory);
}

/**
 * Creates DATA_DIR (owner-only) if it is missing, checks that it is a writable directory
 * of this user's, and makes it and the database's files owner-only. Made one level at a time:
 * Node's recursive mkdir loops for ever where the kernel refuses a directory with ENOENT
 * under an existing parent (`/proc/nope`).
 */
export function prepareDataDir(dataDir: string): void {
  if (!isDataDirPresent(dataDir)) {
    const missing: string[] = [];
    for (let directory = dataDir; !fs.existsSync(directory); directory = path.dirname(directory)) missing.unshift(directory);
    for (const directory of missing) {
      try {
        fs.mkdirSync(directory, { mode: 0o700 });
      } catch (error) {
        if (errorCode(error) === 'EEXIST' && fs.statSync(directory).isDirectory()) continue;
        throw new DataDirError(`DATA_DIR ${dataDir} cannot be created: mkdir ${directory}: ${errorCode(error)}`);
      }
    }
    checkOwnerOnly(dataDir, `DATA_DIR ${dataDir}`);
  }
  try {
    fs.accessSync(dataDir, fs.constants.W_OK | fs.constants.X_OK);
  } catch (error) {
    throw new DataDirError(`DATA_DIR ${dataDir} cannot be used: it is not writable (${errorCode(error)})`);
  }
  // DATA_DIR itself, and the database's files, whose modes PGlite chooses. The other files
  // are this server's own, written owner-only; the key-encryption key among them is checked,
  // not mended (keys/key-ring.ts): one that others could read may have leaked.
  const mode = fs.statSync(dataDir).mode;
  if ((mode & 0o077) !== 0) fs.chmodSync(dataDir, mode & 0o700);
  const database = path.join(dataDir, 'pgdata');
  if (fs.existsSync(database)) restrictToOwner(database, `DATA_DIR ${dataDir}`);
}
