#!/usr/bin/env node
/**
 * The operator CLI (server/src/cli/main.ts), run from its compiled form in build/. Like
 * `npm start`, it compiles first when build/ is missing or older than the sources, so
 * `npx sentryagent-idp` works straight after `npm ci`, and after an upgrade never runs the
 * old code (a stale `migrate` would miss the new migrations). Compiling takes a few seconds
 * and says so on stderr; stdout stays clean for --json. Several invocations at once
 * compile once: the others wait on a lock directory, then find the build fresh.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const ENTRY = path.join(ROOT, 'build/server/src/cli/main.js');
// Written by every compile (tsconfig.build.json) and touched here after one.
const STAMP = path.join(ROOT, 'build/.tsbuildinfo');
const LOCK = path.join(ROOT, 'build/.compile-lock');
const SOURCES = ['server/src', 'server/migrations', 'tsconfig.json', 'tsconfig.build.json'];
const LOCK_STALE_MS = 5 * 60_000;

function newestSourceMs(entry) {
  let stat;
  try {
    stat = fs.statSync(entry);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return entry.endsWith('.ts') || entry.endsWith('.json') ? stat.mtimeMs : 0;
  return Math.max(0, ...fs.readdirSync(entry).map((name) => newestSourceMs(path.join(entry, name))));
}

const newestSourcesMs = () => Math.max(...SOURCES.map((entry) => newestSourceMs(path.join(ROOT, entry))));

function isBuildFresh() {
  if (!fs.existsSync(ENTRY) || !fs.existsSync(STAMP)) return false;
  const hasSources = fs.existsSync(path.join(ROOT, 'server/src'));
  // An installation shipped without sources runs what it has.
  return !hasSources || fs.statSync(STAMP).mtimeMs >= newestSourcesMs();
}

const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

class CompileError extends Error {}

function compile() {
  let tsc;
  try {
    tsc = createRequire(path.join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
  } catch {
    throw new CompileError('build/ is missing or older than the sources, and TypeScript is not installed to compile them: run `npm ci`, then `npm run build`.');
  }
  process.stderr.write('sentryagent-idp: compiling the server first (build/ is missing or older than the sources)…\n');
  try {
    // Compiler messages go to stderr: stdout belongs to the command (--json).
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  } catch {
    throw new CompileError('compiling failed (see above); fix the sources or run `npm run build` to see the errors.');
  }
  // tsc may leave its build info untouched when nothing needed emitting: mark the build
  // fresh, and no older than the newest source (whose clock may run ahead of ours).
  const fresh = new Date(Math.max(Date.now(), Math.ceil(newestSourcesMs()) + 1));
  fs.utimesSync(STAMP, fresh, fresh);
}

function compileOnce() {
  fs.mkdirSync(path.dirname(LOCK), { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(LOCK);
      break;
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
      try {
        if (Date.now() - fs.statSync(LOCK).mtimeMs > LOCK_STALE_MS) fs.rmSync(LOCK, { recursive: true, force: true });
      } catch {
        // Released meanwhile.
      }
      sleep(200);
    }
  }
  try {
    if (!isBuildFresh()) compile();
  } finally {
    fs.rmSync(LOCK, { recursive: true, force: true });
  }
}

try {
  if (!isBuildFresh()) compileOnce();
} catch (error) {
  if (!(error instanceof CompileError)) throw error;
  process.stderr.write(`sentryagent-idp: ${error.message}\n`);
  process.exit(1);
}
await import(pathToFileURL(ENTRY).href);
