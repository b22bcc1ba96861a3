/**
 * The OpenAPI document as a test oracle. `send` hands every reply to `assertDocumentedReply`:
 * the operation is found by method and path template, the status must be one it documents,
 * the body must match the schema documented for the reply's media type, and the documented
 * headers must be present when required and well-formed when present. What the document
 * states once for every path is checked too: a path it does not know answers 404, and a
 * method a documented path lacks 405, in one of the two error shapes; `OPTIONS` answers 200
 * with an empty body and an `Allow` header naming exactly the documented methods; every
 * reply carries `X-Request-Id`. Any mismatch throws, naming the operation and the problem.
 */
import { readFileSync } from 'node:fs';
import Ajv2020Module from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { ValidateFunction } from 'ajv';

export const OPENAPI_PATH = new URL('../../server/openapi/openapi.json', import.meta.url);
export const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export const openApiDocument: Json = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'));

const DEFS_ID = 'https://sentryagent.test/openapi-schemas.json';
const COMPONENT_SCHEMAS = '#/components/schemas/';

/** Component schema refs become refs into one registered schema of `$defs`, so that ajv resolves them. */
function toAjvRefs(value: Json): Json {
  if (Array.isArray(value)) return value.map(toAjvRefs);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) =>
      key === '$ref' && typeof child === 'string' && child.startsWith(COMPONENT_SCHEMAS)
        ? [key, `${DEFS_ID}#/$defs/${child.slice(COMPONENT_SCHEMAS.length)}`]
        : [key, toAjvRefs(child)],
    ),
  );
}

/** ajv for OpenAPI 3.1 schemas (JSON Schema 2020-12), strict, with `format` checked. */
export function createSchemaValidator(document: Json = openApiDocument) {
  const Ajv2020 = Ajv2020Module.default;
  const ajv = new Ajv2020({ strict: true, allErrors: true, allowUnionTypes: true });
  addFormatsModule.default(ajv);
  // OpenAPI's own format for secrets: an annotation, not a constraint.
  ajv.addFormat('password', true);
  ajv.addSchema({ $id: DEFS_ID, $defs: toAjvRefs(document.components?.schemas ?? {}) });
  const compiled = new Map<string, ValidateFunction>();
  return {
    ajv,
    /** Compiles (once per location) the schema found at `location`. */
    validatorFor(location: string, schema: Json): ValidateFunction {
      let validate = compiled.get(location);
      if (!validate) {
        validate = ajv.compile(toAjvRefs(schema));
        compiled.set(location, validate);
      }
      return validate;
    },
  };
}

/** Resolves a local `$ref` (`#/components/...`) once; other values are returned as they are. */
export function resolveRef(value: Json, document: Json = openApiDocument): Json {
  if (!value || typeof value.$ref !== 'string') return value;
  return pointerGet(document, value.$ref);
}

export function pointerGet(document: Json, ref: string): Json {
  if (!ref.startsWith('#/')) throw new Error(`${ref} is not a local reference`);
  let target = document;
  for (const raw of ref.slice(2).split('/')) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (target === null || typeof target !== 'object' || !(key in target)) return undefined;
    target = target[key];
  }
  return target;
}

const escapePointer = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

interface DocumentedPath {
  readonly template: string;
  readonly pattern: RegExp;
  readonly templatedSegments: number;
}

const documentedPaths: DocumentedPath[] = Object.keys(openApiDocument.paths)
  .map((template) => ({
    template,
    pattern: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
    templatedSegments: (template.match(/\{/g) ?? []).length,
  }))
  // A literal segment wins over a template (`/x/verify` before `/x/{id}`).
  .sort((a, b) => a.templatedSegments - b.templatedSegments);

export function findPathTemplate(pathname: string): string | undefined {
  const path = pathname.length > 1 ? pathname.replace(/\/$/, '') : pathname;
  return documentedPaths.find((candidate) => candidate.pattern.test(path))?.template;
}

const validator = createSchemaValidator();
const ANY_ERROR = { oneOf: [{ $ref: `${COMPONENT_SCHEMAS}ErrorResponse` }, { $ref: `${COMPONENT_SCHEMAS}OAuth2ErrorResponse` }] };

export interface DocumentedReply {
  readonly status: number;
  readonly headers: Headers;
  readonly body: unknown;
  readonly text: string;
}

/** The methods a documented path's `Allow` header names: its operations, and HEAD wherever GET is. */
export function allowedMethods(template: string): string[] {
  const pathItem = openApiDocument.paths[template];
  const methods = HTTP_METHODS.filter((method) => pathItem[method]).map((method) => method.toUpperCase());
  return methods.includes('GET') ? [...methods, 'HEAD'] : methods;
}

export function assertDocumentedReply(method: string, url: string, reply: DocumentedReply): void {
  const { pathname } = new URL(url, 'http://localhost');
  const isHead = method.toUpperCase() === 'HEAD';
  const verb = isHead ? 'get' : method.toLowerCase();
  const where = `${method.toUpperCase()} ${pathname} answered ${reply.status}`;
  const fail = (problem: string): never => {
    throw new Error(`OpenAPI mismatch: ${where}: ${problem}\n  body: ${reply.text.slice(0, 600)}`);
  };
  if (!reply.headers.get('x-request-id')) fail('the reply has no X-Request-Id header');
  const template = findPathTemplate(pathname);
  const operation = template ? openApiDocument.paths[template][verb] : undefined;
  if (template && !operation && verb === 'options') return checkOptionsReply(template, reply, fail);
  if (!template || !operation) {
    const expected = template ? 405 : 404;
    if (reply.status !== expected) fail(template ? `the document has no ${verb} operation on ${template}` : 'no documented path matches');
    // A reply to HEAD has no body, whatever its status.
    if (isHead) return reply.text === '' ? undefined : fail('a reply to HEAD has a body');
    return checkBody(validator.validatorFor('#/any-error', ANY_ERROR), reply, fail);
  }
  let location = `#/paths/${escapePointer(template)}/${verb}/responses/${reply.status}`;
  let response = operation.responses[String(reply.status)];
  if (!response) fail(`status ${reply.status} is not documented for ${operation.operationId} (documented: ${Object.keys(operation.responses).join(', ')})`);
  if (response.$ref) {
    location = response.$ref;
    response = resolveRef(response);
  }
  checkHeaders(location, response, reply, fail);
  if (isHead) return reply.text === '' ? undefined : fail('a reply to HEAD has a body');
  const mediaType = (reply.headers.get('content-type') ?? '').split(';')[0].trim().toLowerCase();
  if (!response.content) {
    if (reply.text !== '') fail(`${operation.operationId} documents no body for ${reply.status}`);
    return;
  }
  const media = response.content[mediaType];
  if (!media) fail(`Content-Type "${mediaType}" is not documented (documented: ${Object.keys(response.content).join(', ')})`);
  if (!media.schema) return;
  if (mediaType === 'application/json' || mediaType.endsWith('+json')) {
    checkBody(validator.validatorFor(`${location}/content/${escapePointer(mediaType)}/schema`, media.schema), reply, fail);
  } else if (media.schema.type === 'string' && typeof reply.text !== 'string') {
    fail('the body is not text');
  }
}

function checkOptionsReply(template: string, reply: DocumentedReply, fail: (problem: string) => never): void {
  if (reply.status !== 200) fail('OPTIONS on a documented path must answer 200');
  if (reply.text !== '') fail('a reply to OPTIONS has no body');
  const allowed = (reply.headers.get('allow') ?? '').split(',').map((method) => method.trim()).filter(Boolean).sort();
  const documented = allowedMethods(template).sort();
  if (allowed.join(', ') !== documented.join(', ')) fail(`Allow is "${allowed.join(', ')}", the document has ${documented.join(', ')} on ${template}`);
}

/** Documented headers: present when `required`, and matching their schema when present (integers as digits). */
function checkHeaders(location: string, response: Json, reply: DocumentedReply, fail: (problem: string) => never): void {
  for (const [name, declared] of Object.entries(response.headers ?? {})) {
    const header = resolveRef(declared);
    const value = reply.headers.get(name);
    if (value === null) {
      if (header.required) fail(`the required header ${name} is missing`);
      continue;
    }
    const schema = header.schema ?? {};
    const isInteger = schema.type === 'integer';
    if (isInteger && !/^-?\d+$/.test(value)) fail(`the header ${name} is "${value}", not an integer`);
    const validate = validator.validatorFor(`${location}/headers/${escapePointer(name)}/schema`, schema);
    if (!validate(isInteger ? Number(value) : value)) fail(`the header ${name} is "${value}": ${JSON.stringify(validate.errors)}`);
  }
}

function checkBody(validate: ValidateFunction, reply: DocumentedReply, fail: (problem: string) => never): void {
  if (reply.body === undefined) fail('the body is not JSON');
  if (!validate(reply.body)) {
    const problems = (validate.errors ?? []).map((error) => `${error.instancePath || '(body)'} ${error.message}${error.params ? ` ${JSON.stringify(error.params)}` : ''}`);
    fail(`the body does not match the documented schema:\n  - ${problems.join('\n  - ')}`);
  }
}
