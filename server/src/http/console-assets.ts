/**
 * GET /console: the admin console, served by the server itself. The page and its
 * stylesheet come from console/static, the compiled scripts from build/console (`npm run
 * build`); all are read once into memory. Every answer carries a strict
 * Content-Security-Policy (scripts, styles and requests from this origin only, no inline
 * script or style, no frames) and asks to be revalidated, so a new release is picked up
 * at the next load. The console has no authority of its own: it calls the public API
 * with the token its user signs in with.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Router from '@koa/router';
import type { Context } from 'koa';

export const CONSOLE_CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
  // The console writes no HTML from strings: a future innerHTML fails instead of opening a hole.
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');

const CONSOLE_HEADERS = {
  'Content-Security-Policy': CONSOLE_CONTENT_SECURITY_POLICY,
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-cache',
};

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
};

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

// This module runs from server/src/http (tests) or build/server/src/http (compiled).
const STATIC_LOCATIONS = ['../../../console/static/', '../../../../console/static/'];
const SCRIPT_LOCATIONS = ['../../../build/console/', '../../../console/'];

function firstWith(locations: readonly string[], file: string): string | undefined {
  return locations.map((location) => fileURLToPath(new URL(location, import.meta.url))).find((directory) => fs.existsSync(path.join(directory, file)));
}

function filesUnder(directory: string, extension: string): string[] {
  return fs
    .readdirSync(directory, { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith(extension))
    .map((file) => file.split(path.sep).join('/'));
}

function asset(file: string): Asset {
  const body = fs.readFileSync(file);
  return { body, type: TYPES[path.extname(file)]!, etag: `"${crypto.createHash('sha256').update(body).digest('base64url').slice(0, 27)}"` };
}

/** URL path → asset, or undefined when the console's files are not there (not built). */
function loadAssets(): Map<string, Asset> | undefined {
  const staticDirectory = firstWith(STATIC_LOCATIONS, 'index.html');
  const scriptDirectory = firstWith(SCRIPT_LOCATIONS, 'main.js');
  if (!staticDirectory || !scriptDirectory) return undefined;
  const page = asset(path.join(staticDirectory, 'index.html'));
  const assets = new Map<string, Asset>([
    ['/console', page],
    ['/console/', page],
  ]);
  for (const file of filesUnder(staticDirectory, '.css')) assets.set(`/console/${file}`, asset(path.join(staticDirectory, file)));
  for (const file of filesUnder(scriptDirectory, '.js')) assets.set(`/console/${file}`, asset(path.join(scriptDirectory, file)));
  return assets;
}

let loaded: Map<string, Asset> | undefined;

function serve(found: Asset) {
  return (ctx: Context) => {
    ctx.set(CONSOLE_HEADERS);
    ctx.set('ETag', found.etag);
    ctx.type = found.type;
    if (ctx.get('If-None-Match') === found.etag) {
      ctx.status = 304;
      return;
    }
    ctx.body = found.body;
  };
}

export function consoleRoutes(): Router {
  loaded ??= loadAssets();
  const router = new Router();
  if (!loaded) {
    router.get('/console', (ctx) => {
      ctx.set(CONSOLE_HEADERS);
      ctx.status = 503;
      ctx.type = 'text/plain; charset=utf-8';
      ctx.body = 'The console is not built in this installation: run `npm run build`.\n';
    });
    return router;
  }
  for (const [urlPath, found] of loaded) router.get(urlPath, serve(found));
  return router;
}
