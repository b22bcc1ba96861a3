import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type Router from '@koa/router';
import { createApp } from '../../server/src/app.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, send } from '../support/api.js';
import {
  HTTP_METHODS,
  OPENAPI_PATH,
  assertDocumentedReply,
  createSchemaValidator,
  openApiDocument as doc,
  pointerGet,
  resolveRef,
} from '../support/openapi.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(() => server.stop());

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The essentials of an OpenAPI 3.1 document that tools and this suite rely on. */
const ESSENTIALS = {
  type: 'object',
  required: ['openapi', 'info', 'paths', 'components'],
  properties: {
    openapi: { type: 'string', pattern: '^3\\.1\\.\\d+$' },
    info: { type: 'object', required: ['title', 'version'], properties: { title: { type: 'string', minLength: 1 }, version: { type: 'string', minLength: 1 } } },
    jsonSchemaDialect: { const: 'https://json-schema.org/draft/2020-12/schema' },
    servers: { type: 'array', items: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } } },
    tags: { type: 'array', items: { type: 'object', required: ['name'], properties: { name: { type: 'string' } } } },
    paths: { type: 'object', propertyNames: { pattern: '^/' }, additionalProperties: { $ref: '#/$defs/pathItem' } },
    components: {
      type: 'object',
      properties: {
        schemas: { type: 'object', additionalProperties: { type: 'object' } },
        responses: { type: 'object', additionalProperties: { $ref: '#/$defs/response' } },
        parameters: { type: 'object', additionalProperties: { $ref: '#/$defs/parameter' } },
        securitySchemes: { type: 'object', additionalProperties: { type: 'object', required: ['type'], properties: { type: { enum: ['apiKey', 'http', 'mutualTLS', 'oauth2', 'openIdConnect'] } } } },
      },
    },
  },
  $defs: {
    ref: { type: 'object', required: ['$ref'], properties: { $ref: { type: 'string', pattern: '^#/' } } },
    pathItem: {
      type: 'object',
      propertyNames: { enum: [...HTTP_METHODS, 'parameters', 'summary', 'description', 'servers'] },
      properties: {
        parameters: { type: 'array', items: { anyOf: [{ $ref: '#/$defs/ref' }, { $ref: '#/$defs/parameter' }] } },
        ...Object.fromEntries(HTTP_METHODS.map((method) => [method, { $ref: '#/$defs/operation' }])),
      },
    },
    operation: {
      type: 'object',
      required: ['operationId', 'summary', 'tags', 'responses'],
      properties: {
        operationId: { type: 'string', pattern: '^[a-z][A-Za-z0-9]*$' },
        summary: { type: 'string', minLength: 1 },
        tags: { type: 'array', minItems: 1, items: { type: 'string' } },
        parameters: { type: 'array', items: { anyOf: [{ $ref: '#/$defs/ref' }, { $ref: '#/$defs/parameter' }] } },
        requestBody: { type: 'object', required: ['content'], properties: { content: { $ref: '#/$defs/content' } } },
        security: { type: 'array', items: { type: 'object', additionalProperties: { type: 'array', items: { type: 'string' } } } },
        responses: {
          type: 'object',
          minProperties: 1,
          propertyNames: { pattern: '^([1-5][0-9]{2}|[1-5]XX|default)$' },
          additionalProperties: { anyOf: [{ $ref: '#/$defs/ref' }, { $ref: '#/$defs/response' }] },
        },
      },
    },
    response: {
      type: 'object',
      required: ['description'],
      properties: { description: { type: 'string', minLength: 1 }, content: { $ref: '#/$defs/content' }, headers: { type: 'object' } },
    },
    content: { type: 'object', minProperties: 1, additionalProperties: { type: 'object', required: ['schema'], properties: { schema: { type: ['object', 'boolean'] } } } },
    parameter: {
      type: 'object',
      required: ['name', 'in', 'schema'],
      properties: { name: { type: 'string' }, in: { enum: ['path', 'query', 'header', 'cookie'] }, schema: { type: 'object' }, required: { type: 'boolean' } },
      if: { properties: { in: { const: 'path' } } },
      then: { properties: { required: { const: true } }, required: ['required'] },
    },
  },
};

function operationsOf(document: Json): { template: string; method: string; operation: Json; pathItem: Json }[] {
  return Object.entries(document.paths).flatMap(([template, pathItem]: [string, Json]) =>
    HTTP_METHODS.filter((method) => pathItem[method]).map((method) => ({ template, method, operation: pathItem[method], pathItem })),
  );
}

/** Every value in the document with its JSON pointer. */
function* walk(value: Json, pointer = '#'): Generator<[Json, string]> {
  if (value === null || typeof value !== 'object') return;
  yield [value, pointer];
  for (const [key, child] of Object.entries(value)) yield* walk(child, `${pointer}/${key.replace(/~/g, '~0').replace(/\//g, '~1')}`);
}

describe('the OpenAPI document', () => {
  it('is served at /api/v1/openapi.json as stored, its servers naming PUBLIC_URL, and advertised in the RFC 8414 metadata', async () => {
    const reply = await send(server, '/api/v1/openapi.json');
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-type')).toBe('application/json; charset=utf-8');
    const stored = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));
    expect(reply.body).toEqual({ ...stored, servers: [{ url: 'http://idp.test', description: 'This server (its PUBLIC_URL)' }] });
    const metadata = await send(server, '/.well-known/oauth-authorization-server');
    expect(metadata.body.service_documentation).toBe('http://idp.test/api/v1/openapi.json');
  });

  it('has the structure of an OpenAPI 3.1 document', () => {
    const { ajv } = createSchemaValidator();
    const validate = ajv.compile(ESSENTIALS);
    expect(validate(doc) ? [] : validate.errors).toEqual([]);
  });

  it('resolves every $ref', () => {
    const dangling = [...walk(doc)].filter(([node]) => typeof node.$ref === 'string' && pointerGet(doc, node.$ref) === undefined);
    expect(dangling.map(([node, pointer]) => `${pointer} → ${node.$ref}`)).toEqual([]);
  });

  it('names every operation uniquely, declares its path parameters, tags and security schemes', () => {
    const operations = operationsOf(doc);
    const ids = operations.map(({ operation }) => operation.operationId);
    expect(new Set(ids).size).toBe(ids.length);
    const tags = new Set(doc.tags.map((tag: { name: string }) => tag.name));
    const schemes = Object.keys(doc.components.securitySchemes);
    for (const { template, operation, pathItem } of operations) {
      const declared = [...(pathItem.parameters ?? []), ...(operation.parameters ?? [])].map((parameter) => resolveRef(parameter));
      const inPath = declared.filter((parameter) => parameter.in === 'path').map((parameter) => parameter.name).sort();
      expect({ template, params: inPath }).toEqual({ template, params: [...template.matchAll(/\{([^}]+)\}/g)].map((match) => match[1]).sort() });
      for (const tag of operation.tags) expect(tags).toContain(tag);
      for (const requirement of operation.security ?? doc.security) for (const name of Object.keys(requirement)) expect(schemes).toContain(name);
    }
  });

  it('holds valid JSON Schema 2020-12 schemas whose examples match them', () => {
    const { validatorFor } = createSchemaValidator();
    const failures: string[] = [];
    const check = (pointer: string, schema: Json, example: unknown) => {
      const validate = validatorFor(pointer, schema);
      if (!validate(example)) failures.push(`${pointer}: ${JSON.stringify(validate.errors)}`);
    };
    for (const name of Object.keys(doc.components.schemas)) validatorFor(`#/components/schemas/${name}`, doc.components.schemas[name]);
    let checked = 0;
    for (const [node, pointer] of walk(doc)) {
      const isSchema = /\/schemas?(\/|$)|\/schema\//.test(pointer) && !pointer.endsWith('/properties');
      if (isSchema && Array.isArray(node.examples)) node.examples.forEach((example: unknown) => check(pointer, node, example));
      if (node.schema && 'example' in node) check(`${pointer}/schema`, node.schema, node.example);
      if (node.schema && node.examples && !Array.isArray(node.examples)) {
        for (const example of Object.values(node.examples) as Json[]) check(`${pointer}/schema`, node.schema, example.value);
      }
      checked += Number(isSchema && Array.isArray(node.examples)) + Number(Boolean(node.schema && (node.example !== undefined || node.examples)));
    }
    expect(failures).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it('documents every route the server registers, and nothing it does not', () => {
    const app = createApp(server.deps);
    const routed = app.middleware
      .flatMap((middleware) => (middleware as { router?: Router }).router?.stack ?? [])
      .flatMap((layer) => layer.methods.filter((method) => method !== 'HEAD').map((method) => `${method} ${String(layer.path).replace(/:(\w+)/g, '{$1}')}`));
    const documented = operationsOf(doc).map(({ template, method }) => `${method.toUpperCase()} ${template}`);
    expect(routed.length).toBeGreaterThan(20);
    // The admin console's page and scripts are a web page, not API (docs/console.md).
    const api = routed.filter((route) => !/^GET \/console(\/|$)/.test(route));
    expect(routed.length - api.length).toBeGreaterThan(2);
    expect([...new Set(api)].sort()).toEqual(documented.sort());
  });
});

describe('the reply oracle in support/api.ts', () => {
  const reply = (status: number, body: unknown, contentType = 'application/json; charset=utf-8', headers: Record<string, string> = {}) => ({
    status,
    headers: new Headers({ 'content-type': contentType, 'x-request-id': 'r-1', ...headers }),
    body,
    text: body === undefined ? '' : JSON.stringify(body),
  });
  const tokenReply = { access_token: 'a.b.c', token_type: 'Bearer', expires_in: 3600, scope: 'agents:read' };
  const noStore = { 'cache-control': 'no-store', pragma: 'no-cache' };
  const health = { status: 'ok' };

  it('accepts a documented reply', () => {
    expect(() => assertDocumentedReply('GET', '/healthz?x=1', reply(200, health))).not.toThrow();
    expect(() => assertDocumentedReply('GET', '/nowhere', reply(404, { code: 'NOT_FOUND', message: 'No such endpoint.' }))).not.toThrow();
  });

  it('refuses an undocumented status, field, media type, or a path it does not know answering anything but 404', () => {
    expect(() => assertDocumentedReply('GET', '/healthz', reply(201, health))).toThrow(/GET \/healthz answered 201: status 201 is not documented for getHealth/);
    expect(() => assertDocumentedReply('GET', '/healthz', reply(200, { ...health, uptime: 1 }))).toThrow(/must NOT have additional properties/);
    expect(() => assertDocumentedReply('GET', '/healthz', reply(200, health, 'text/html'))).toThrow(/Content-Type "text\/html" is not documented/);
    expect(() => assertDocumentedReply('GET', '/nowhere', reply(200, health))).toThrow(/no documented path matches/);
    expect(() => assertDocumentedReply('PUT', '/healthz', reply(200, health))).toThrow(/no put operation on \/healthz/);
    const agent = '/api/v1/agents/11111111-1111-4111-8111-111111111111';
    expect(() => assertDocumentedReply('GET', agent, reply(404, { error: 'invalid_request', error_description: 'x' }))).toThrow(/must have required property 'code'/);
  });

  it('requires the documented headers that are required, and checks the ones present', () => {
    expect(() => assertDocumentedReply('POST', '/api/v1/token', reply(200, tokenReply, undefined, noStore))).not.toThrow();
    expect(() => assertDocumentedReply('POST', '/api/v1/token', reply(200, tokenReply))).toThrow(/the required header Cache-Control is missing/);
    expect(() => assertDocumentedReply('POST', '/api/v1/token', reply(200, tokenReply, undefined, { ...noStore, 'cache-control': 'max-age=60' }))).toThrow(
      /the header Cache-Control is "max-age=60"/,
    );
    expect(() => assertDocumentedReply('POST', '/api/v1/token', reply(200, tokenReply, undefined, { ...noStore, 'x-ratelimit-remaining': 'many' }))).toThrow(
      /the header X-RateLimit-Remaining is "many", not an integer/,
    );
    const limited = { code: 'RATE_LIMIT_EXCEEDED', message: 'x' };
    expect(() => assertDocumentedReply('POST', '/api/v1/token', reply(429, limited, undefined, noStore))).toThrow(/the required header Retry-After is missing/);
    expect(() => assertDocumentedReply('GET', '/healthz', { ...reply(200, health), headers: new Headers({ 'content-type': 'application/json' }) })).toThrow(/no X-Request-Id/);
  });

  it('holds OPTIONS to the documented methods and HEAD to an empty body', () => {
    expect(() => assertDocumentedReply('OPTIONS', '/api/v1/agents', reply(200, undefined, 'text/plain', { allow: 'POST, HEAD, GET' }))).not.toThrow();
    expect(() => assertDocumentedReply('OPTIONS', '/api/v1/agents', reply(200, undefined, 'text/plain', { allow: 'POST, GET' }))).toThrow(
      /Allow is "GET, POST", the document has GET, HEAD, POST on \/api\/v1\/agents/,
    );
    expect(() => assertDocumentedReply('OPTIONS', '/nowhere', reply(200, undefined, 'text/plain'))).toThrow(/no documented path matches/);
    expect(() => assertDocumentedReply('HEAD', '/api/v1/token', reply(405, undefined))).not.toThrow();
    expect(() => assertDocumentedReply('HEAD', '/healthz', reply(200, health))).toThrow(/a reply to HEAD has a body/);
  });
});

describe('the server, asked with OPTIONS and HEAD on every documented path', () => {
  it('answers as the document says', async () => {
    const admin = await adminToken(server);
    const anId = '11111111-1111-4111-8111-111111111111';
    const paths = Object.keys(doc.paths).map((template) => template.replace(/\{[^}]+\}/g, anId));
    let checked = 0;
    for (const path of paths) {
      for (const method of ['OPTIONS', 'HEAD']) {
        const reply = await send(server, path, bearer(admin, { method }));
        expect(reply.status).toBeLessThan(500);
        checked += 1;
      }
    }
    expect(checked).toBe(2 * Object.keys(doc.paths).length);
  });
});
