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
/** Linux's sun_path holds 108 bytes with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = 107;

/** An owner-only directory for the socket: DATA_DIR/control, or a private temporary one when that path is too long for a socket. */
function privateDirectoryFor(dataDir: string): { directory: string; isTemporary: boolean } {
  const directory = path.join(dataDir, 'control');
  if (Buffer.byteLength(path.join(directory, 'operator.sock')) > MAX_SOCKET_PATH_BYTES) {
    return { directory: fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-')), isTemporary: true };
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

export async function serveOperatorSocket(dataDir: string, run: (request: OperatorRequest) => Promise<OperatorReply>): Promise<OperatorSocket> {
  const { directory, isTemporary } = privateDirectoryFor(dataDir);
  const socketPath = path.join(directory, 'operator.sock');
  // We hold DATA_DIR's lock: a socket file left here is a dead server's.
  fs.rmSync(socketPath, { force: true });
  const running = new Set<Promise<unknown>>();
  const server = net.createServer((connection) => {
    let received = '';
    connection.setEncoding('utf8');
    connection.on('error', () => connection.destroy());
    connection.on('data', (chunk: string) => {
      received += chunk;
      const end = received.indexOf('\n');
      if (end === -1 && received.length <= MAX_REQUEST_BYTES) return;
      connection.removeAllListeners('data');
      connection.pause();
      const request = end === -1 ? undefined : parseRequest(received.slice(0, end));
      const reply = request
        ? run(request).catch(() => ({ stdout: '', stderr: 'sentryagent-idp: the server failed to run the command\n', exitCode: 1 }))
        : Promise.resolve<OperatorReply>({ stdout: '', stderr: 'sentryagent-idp: the operator socket received a malformed request\n', exitCode: 2 });
      const answered = reply.then((value) => new Promise<void>((resolve) => connection.end(`${JSON.stringify(value)}\n`, () => resolve())));
      running.add(answered);
      void answered.finally(() => running.delete(answered));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve());
  });
  fs.chmodSync(socketPath, 0o600);
  let closing: Promise<void> | undefined;
  return {
    path: socketPath,
    close: () =>
      (closing ??= (async () => {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await Promise.allSettled([...running]);
        fs.rmSync(isTemporary ? directory : socketPath, { recursive: true, force: true });
      })()),
  };
}

/** The server's socket could not be reached (it stopped meanwhile): the caller may take DATA_DIR itself. */
export class OperatorSocketUnreachable extends Error {}

/** Sends one command; rejects with OperatorSocketUnreachable when nothing listens, with Error when the server hung up mid-command. */
export function sendOperatorCommand(socketPath: string, request: OperatorRequest): Promise<OperatorReply> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socketPath);
    let isConnected = false;
    let received = '';
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
      try {
        resolve(JSON.parse(received) as OperatorReply);
      } catch {
        if (isConnected) {
          reject(new Error('the server closed the operator socket before answering: the command may or may not have taken effect'));
        }
      }
    });
  });
}
