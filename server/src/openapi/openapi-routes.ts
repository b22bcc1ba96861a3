/**
 * GET /api/v1/openapi.json: the OpenAPI 3.1 description of this API, as stored in
 * server/openapi/openapi.json (the tests validate every response against it), with
 * `servers` naming this server's PUBLIC_URL, so that a client generated from the served
 * document calls the right host.
 */
import fs from 'node:fs';
import Router from '@koa/router';

// This module runs from server/src/openapi (tests) or build/server/src/openapi (compiled);
// the document stays in server/openapi of the package in both cases.
const DOCUMENT_LOCATIONS = [
  new URL('../../openapi/openapi.json', import.meta.url),
  new URL('../../../../server/openapi/openapi.json', import.meta.url),
];

export function readOpenApiDocument(): Buffer {
  const location = DOCUMENT_LOCATIONS.find((candidate) => fs.existsSync(candidate));
  if (!location) throw new Error('server/openapi/openapi.json is missing from the installation');
  return fs.readFileSync(location);
}

export function openApiRoutes(publicUrl: string): Router {
  const stored = JSON.parse(readOpenApiDocument().toString('utf8')) as Record<string, unknown>;
  const document = Buffer.from(JSON.stringify({ ...stored, servers: [{ url: publicUrl, description: 'This server (its PUBLIC_URL)' }] }));
  const router = new Router();
  router.get('/api/v1/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/json';
    ctx.body = document;
  });
  return router;
}
