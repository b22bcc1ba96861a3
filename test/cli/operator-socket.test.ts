/**
 * The operator socket (cli/operator-socket.ts) on its own: one command per connection,
 * owner-only, never handed a command when it is not private, and a shutdown that neither
 * waits for idle connections nor cuts a command being run.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { sendOperatorCommand, serveOperatorSocket, type OperatorReply, type OperatorRequest } from '../../server/src/cli/operator-socket.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';

const freshDir = useTemporaryDirs('sentryagent-socket-');

const echo = async (request: OperatorRequest): Promise<OperatorReply> => ({ stdout: `${request.argv.join(' ')}\n`, stderr: '', exitCode: request.json ? 0 : 3 });

function rawExchange(socketPath: string, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const connection = net.connect(socketPath, () => connection.write(text));
    let received = '';
    connection.setEncoding('utf8').on('data', (chunk: string) => (received += chunk));
    connection.on('close', () => resolve(received));
    connection.on('error', reject);
  });
}

describe('the operator socket', () => {
  it('runs one command per connection and answers with its output and exit code', async () => {
    const dataDir = freshDir();
    const socket = await serveOperatorSocket(dataDir, echo);
    try {
      expect(socket.path).toBe(path.join(dataDir, 'control', 'operator.sock'));
      expect(await sendOperatorCommand(socket.path, { argv: ['agents', 'list'], json: true })).toEqual({ stdout: 'agents list\n', stderr: '', exitCode: 0 });
      expect(await sendOperatorCommand(socket.path, { argv: ['agents', 'show', 'x'], json: false })).toMatchObject({ exitCode: 3 });
    } finally {
      await socket.close();
    }
    expect(fs.existsSync(socket.path)).toBe(false);
  });

  it('makes an existing control directory owner-only again', async () => {
    const dataDir = freshDir();
    fs.mkdirSync(path.join(dataDir, 'control'), { mode: 0o755 });
    fs.chmodSync(path.join(dataDir, 'control'), 0o755);
    const socket = await serveOperatorSocket(dataDir, echo);
    try {
      expect(fs.statSync(path.join(dataDir, 'control')).mode & 0o777).toBe(0o700);
      expect(fs.statSync(socket.path).mode & 0o777).toBe(0o600);
    } finally {
      await socket.close();
    }
  });

  it('answers a malformed request with exit 2 and runs nothing', async () => {
    const dataDir = freshDir();
    let runs = 0;
    const socket = await serveOperatorSocket(dataDir, async (request) => (runs++, echo(request)));
    try {
      for (const malformed of ['not json\n', '{"argv": "agents list", "json": false}\n', '{"argv": [1], "json": false}\n']) {
        expect(JSON.parse(await rawExchange(socket.path, malformed))).toEqual({
          stdout: '',
          stderr: 'sentryagent-idp: the operator socket received a malformed request\n',
          exitCode: 2,
        });
      }
      expect(runs).toBe(0);
    } finally {
      await socket.close();
    }
  });

  it('is never handed a command when its directory is open to others', async () => {
    const dir = freshDir();
    fs.chmodSync(dir, 0o755);
    const socketPath = path.join(dir, 'operator.sock');
    const planted = net.createServer((connection) => connection.end('{"stdout":"planted","stderr":"","exitCode":0}\n')).listen(socketPath);
    await new Promise((resolve) => planted.once('listening', resolve));
    try {
      expect(() => sendOperatorCommand(socketPath, { argv: ['credentials', 'create', 'x'], json: false })).toThrow(
        `the operator socket ${socketPath} is not private to this user: refusing to use it`,
      );
    } finally {
      await new Promise((resolve) => planted.close(resolve));
    }
  });

  it('closes without waiting for an idle connection, and lets a command being run finish', async () => {
    const dataDir = freshDir();
    let finish: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => (finish = resolve));
    const socket = await serveOperatorSocket(dataDir, async (request) => (await slow, echo(request)));
    const idle = net.connect(socket.path);
    await new Promise((resolve) => idle.once('connect', resolve));
    const running = sendOperatorCommand(socket.path, { argv: ['keys', 'rotate'], json: true });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closed = socket.close();
    setTimeout(finish, 100);
    await closed;
    expect(await running).toEqual({ stdout: 'keys rotate\n', stderr: '', exitCode: 0 });
    expect(idle.destroyed || idle.readableEnded).toBe(true);
  });
});
