/**
 * GET /api/v1/openapi.json: the OpenAPI 3.1 description of this API, served byte for byte
 * as stored in server/openapi/openapi.json (the tests validate every response against it).
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

export function openApiRoutes(): Router {
  const document = readOpenApiDocument();
  const router = new Router();
  router.get('/api/v1/openapi.json', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.type = 'application/json';
    ctx.body = document;
  });
  return router;
}
