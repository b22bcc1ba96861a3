/** The server as a real process, started the way `npm start` starts it (compiled main.js). */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';

export interface ServerProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly url: string;
  stdout(): string;
  stderr(): string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export const MAIN = 'build/server/src/main.js';

/** `onStdout` sees the whole output so far at each chunk, before the server listens too. */
export function startServerProcess(env: Record<string, string | undefined>, onStdout?: (output: string) => void): Promise<ServerProcess> {
  const child = spawn(process.execPath, [MAIN], {
    env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  // 'close', not 'exit': at 'exit' the child's stdout and stderr may still hold unread output.
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    // Below the callers' jest timeouts (120 s), so that a slow start still fails with the server's output.
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}\n${err}`)), 90_000);
    child.stderr.on('data', (chunk) => (err += chunk));
    child.stdout.on('data', (chunk) => {
      out += chunk;
      onStdout?.(out);
      const listening = /"port":(\d+).*"msg":"listening"/.exec(out);
      if (listening) {
        clearTimeout(timer);
        resolve({
          child,
          url: `http://127.0.0.1:${listening[1]}`,
          stdout: () => out,
          stderr: () => err,
          stop: (signal = 'SIGTERM') => {
            child.kill(signal);
            return exited;
          },
        });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}\n${err}`));
    });
  });
}

/**
 * Runs the server to its exit, as a start that must fail. A server that starts instead is
 * killed after `timeoutMs` (code null), so that the test fails rather than hangs.
 */
export function runToExit(env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

export interface WatchedProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout(): string;
  stderr(): string;
  /** Resolves with the first match in standard output, waiting for it up to `timeoutMs`. */
  waitForStdout(pattern: RegExp, timeoutMs?: number): Promise<RegExpExecArray>;
  /** The exit code once the process has exited and its output is read. */
  readonly exited: Promise<number | null>;
}

/** The server (or another command line, node's by default) as a process to watch from its first line, ready or not. */
export function watchProcess(args: string[], env: Record<string, string | undefined>, command = process.execPath): WatchedProcess {
  const child = spawn(command, args, { env: { PATH: process.env.PATH, PORT: '0', LOG_LEVEL: 'info', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  child.stderr.on('data', (chunk) => (err += chunk));
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  const waitForStdout = async (pattern: RegExp, timeoutMs = 60_000) => {
    for (const deadline = Date.now() + timeoutMs; ; ) {
      const match = pattern.exec(out);
      if (match) return match;
      if (child.exitCode !== null || Date.now() > deadline) throw new Error(`no ${pattern} in the output (exit code ${child.exitCode}):\n${out}\n${err}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  };
  return { child, stdout: () => out, stderr: () => err, waitForStdout, exited };
}
