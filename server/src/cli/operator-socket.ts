/**
 * The operator socket: how the CLI runs a command while a server holds the embedded
 * database (PGlite is one process's). The server listens on a Unix socket in a private
 * directory of DATA_DIR and runs each command it receives exactly as the CLI would, with
 * the CLI's authority (`operator`). That authority is what the file system grants: the
 * socket's directory is owner-only (0700), as the database files beside it should be, so
 * only the user who can read and write the database can reach the socket.
 *
 * One request per connection: a JSON line `{argv, json}` in, a JSON line
 * `{stdout, stderr, exitCode}` out.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface OperatorRequest {
  readonly argv: readonly string[];
  readonly json: boolean;
}

export interface OperatorReply {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

export interface OperatorSocket {
  readonly path: string;
  /** Stops accepting commands and waits for those being run. */
  close(): Promise<void>;
}

/** Far above any real command line; a bound on what a connection can make the server hold. */
const MAX_REQUEST_BYTES = 64 * 1024;
/** sun_path holds 108 bytes on Linux and 104 on macOS, with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 103;
/** A connection that has not sent its command by then is dropped. */
const REQUEST_TIMEOUT_MS = 30_000;
/** The CLI says it is waiting after this long, and gives up after the second. */
const SLOW_REPLY_NOTICE_MS = 10_000;
const REPLY_TIMEOUT_MS = 10 * 60_000;
const SOCKET_NAME = 'operator.sock';

const fitsSocketPath = (directory: string) => Buffer.byteLength(path.join(directory, SOCKET_NAME)) <= MAX_SOCKET_PATH_BYTES;

/**
 * An owner-only directory for the socket: DATA_DIR/control, or a private temporary one
 * when that path is too long for a socket. DATA_DIR itself is the user's own and not
 * writable by others (storage/data-dir.ts), so nobody else can swap `control` meanwhile.
 */
function privateDirectoryFor(dataDir: string): { directory: string; isTemporary: boolean } {
  const directory = path.join(dataDir, 'control');
  if (!fitsSocketPath(directory)) {
    const temporary = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-'));
    if (!fitsSocketPath(temporary)) {
      fs.rmSync(temporary, { recursive: true, force: true });
      throw new Error(`no directory short enough for the operator socket (TMPDIR ${os.tmpdir()} is too long)`);
    }
    return { directory: temporary, isTemporary: true };
  }
  try {
    fs.mkdirSync(directory, { mode: 0o700 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const stat = fs.lstatSync(directory);
  if (!stat.isDirectory() || (process.getuid !== undefined && stat.uid !== process.getuid())) {
    throw new Error(`${directory} is not a directory of this user's: remove it`);
  }
  fs.chmodSync(directory, 0o700);
  return { directory, isTemporary: false };
}

function parseRequest(line: string): OperatorRequest | undefined {
  try {
    const request = JSON.parse(line) as OperatorRequest;
    const isValid = Array.isArray(request.argv) && request.argv.every((word) => typeof word === 'string') && typeof request.json === 'boolean';
    return isValid ? { argv: request.argv, json: request.json } : undefined;
  } catch {
    return undefined;
  }
}

const MALFORMED: OperatorReply = { stdout: '', stderr: 'sentryagent-idp: the operator socket received a malformed request\n', exitCode: 2 };
const FAILED: OperatorReply = { stdout: '', stderr: 'sentryagent-idp: the server failed to run the command\n', exitCode: 1 };

export async function serveOperatorSocket(dataDir: string, run: (request: OperatorRequest) => Promise<OperatorReply>): Promise<OperatorSocket> {
  const { directory, isTemporary } = privateDirectoryFor(dataDir);
  const socketPath = path.join(directory, SOCKET_NAME);
  const removeSocket = () => fs.rmSync(isTemporary ? directory : socketPath, { recursive: true, force: true });
  // We hold DATA_DIR's lock: a socket file left here is a dead server's.
  fs.rmSync(socketPath, { force: true });
  const running = new Set<Promise<unknown>>();
  const waiting = new Set<net.Socket>();
  const server = net.createServer((connection) => {
    let received = '';
    waiting.add(connection);
    connection.setEncoding('utf8');
    connection.setTimeout(REQUEST_TIMEOUT_MS, () => connection.destroy());
    connection.on('error', () => connection.destroy());
    connection.on('close', () => waiting.delete(connection));
    connection.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end === -1 && received.length <= MAX_REQUEST_BYTES) return;
      waiting.delete(connection);
      connection.removeAllListeners('data');
      connection.setTimeout(0);
      connection.pause();
      const request = end === -1 ? undefined : parseRequest(received.slice(0, end));
      const reply = request ? run(request).catch(() => FAILED) : Promise.resolve(MALFORMED);
      const answered = reply.then((value) => new Promise<void>((resolve) => connection.end(`${JSON.stringify(value)}\n`, () => resolve())));
      running.add(answered);
      void answered.finally(() => running.delete(answered));
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => resolve());
    });
    // Node cuts a path too long for sun_path short instead of refusing it.
    if (server.address() !== socketPath) throw new Error(`the operator socket was bound at ${String(server.address())}, not ${socketPath}`);
    fs.chmodSync(socketPath, 0o600);
  } catch (error) {
    server.close();
    removeSocket();
    throw error;
  }
  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close: () =>
      (closing ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // Connections that have not sent a command get none run; those running one finish it.
        for (const connection of waiting) connection.destroy();
        await Promise.allSettled([...running]);
        await closed;
        removeSocket();
      })()),
  };
}

/** The server's socket could not be reached (it stopped meanwhile): the caller may take DATA_DIR itself. */
export class OperatorSocketUnreachable extends Error {}

/**
 * Refuses to hand a command (which may print a new secret) to a socket that is not this
 * user's own, in a directory only this user can enter.
 */
function checkPrivate(socketPath: string): void {
  const uid = process.getuid?.();
  const socket = fs.lstatSync(socketPath, { throwIfNoEntry: false });
  if (socket === undefined) throw new OperatorSocketUnreachable('ENOENT');
  const directory = fs.lstatSync(path.dirname(socketPath), { throwIfNoEntry: false });
  if (directory === undefined) throw new OperatorSocketUnreachable('ENOENT');
  const isOwn = (stat: fs.Stats) => uid === undefined || stat.uid === uid;
  if (!socket.isSocket() || !isOwn(socket) || !directory.isDirectory() || !isOwn(directory) || (directory.mode & 0o077) !== 0) {
    throw new Error(`the operator socket ${socketPath} is not private to this user: refusing to use it`);
  }
}

/**
 * Sends one command. Rejects with OperatorSocketUnreachable when nothing listens, and
 * with an Error when the socket is not private or the server hung up mid-command.
 */
export function sendOperatorCommand(socketPath: string, request: OperatorRequest, onSlowReply?: () => void): Promise<OperatorReply> {
  checkPrivate(socketPath);
  return new Promise((resolve, reject) => {
    const connection = net.connect(socketPath);
    let isConnected = false;
    let received = '';
    const notice = setTimeout(() => onSlowReply?.(), SLOW_REPLY_NOTICE_MS);
    const limit = setTimeout(() => {
      connection.destroy();
      reject(new Error(`the server did not answer in ${REPLY_TIMEOUT_MS / 60_000} minutes: the command may or may not have taken effect`));
    }, REPLY_TIMEOUT_MS);
    connection.setEncoding('utf8');
    connection.on('connect', () => {
      isConnected = true;
      connection.write(`${JSON.stringify(request)}\n`);
    });
    connection.on('data', (chunk: string) => (received += chunk));
    connection.on('error', (error: NodeJS.ErrnoException) => {
      if (!isConnected) reject(new OperatorSocketUnreachable(error.code ?? error.message));
    });
    connection.on('close', () => {
      clearTimeout(notice);
      clearTimeout(limit);
      try {
        resolve(JSON.parse(received) as OperatorReply);
      } catch {
        if (isConnected) reject(new Error('the server closed the operator socket before answering: the command may or may not have taken effect'));
      }
    });
  });
}
