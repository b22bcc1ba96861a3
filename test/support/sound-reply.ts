/**
 * The oracle of the hostile-input properties (CONTRACT.md, "Errors"): never a 5xx; an
 * error in its path family's documented shape with a documented 4xx; nothing internal
 * (stack frames, file paths, SQL, database or library names) in an error body; a reply
 * the OpenAPI document describes. A request Node's HTTP parser refuses never reaches the
 * application: it gets a 4xx in the API error shape (a refused Expect: Node's bare 417).
 */
import { assertDocumentedReply } from './openapi.js';
import type { RawReply, RawRequest } from './raw-http.js';

export interface SoundnessOptions {
  /** Also hold the reply to the OpenAPI document (the target must be a plain path). */
  readonly documented?: boolean;
}

// The grant endpoints answer what goes wrong with the grant in RFC 6749's shape; everything
// else, on every endpoint (429 and 5xx included), is {code, message, details?}.
const GRANT_ENDPOINTS = new Set(['/api/v1/token', '/api/v1/oidc/token', '/api/v1/oidc/register']);
const GRANT_ERROR_STATUSES = new Set([400, 401, 403, 413]);
const OAUTH_CODES = new Set(['invalid_request', 'invalid_client', 'invalid_grant', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope', 'access_denied']);
const API_STATUS_OF: Record<string, number[]> = {
  VALIDATION_ERROR: [400, 405, 413],
  UNAUTHORIZED: [401],
  INSUFFICIENT_SCOPE: [403],
  FORBIDDEN: [403],
  NOT_FOUND: [404],
  CONFLICT: [409],
  RATE_LIMIT_EXCEEDED: [429],
};

/**
 * What must never be in the text of an error (error_description, message, details): each
 * string of the body is checked on its own, with the text it quotes left out first, since
 * a message may quote a field name the client sent.
 */
const LEAKS: [string, RegExp][] = [
  ['a stack frame', /\bat\s+\S+\s+\(|\n\s*at\s|<anonymous>/],
  ['a file path', /node_modules|node:internal|\/work\/|\/home\/|\/usr\/|[\w-]+\.(?:ts|js|mjs|cjs)\b|file:\/\//],
  ['a database or library name', /\bknex\b|\bpg\b|pglite|postgres|\bsql\b|\bzod\b|\bjose\b|\bkoa\b/i],
  ['SQL', /\b(?:select|insert|update|delete)\b[\s\S]*\b(?:from|into|set|where)\b|\$\d+\b|::(?:uuid|text|int|jsonb|timestamptz)\b|\breturning\b/i],
  ['a database error', /violates|duplicate key|out of range|invalid byte sequence|syntax error|relation\b|\bcolumn\b|constraint|unterminated|invalid input syntax/i],
  ['an exception name', /\b[A-Z][a-z]+(?:[A-Z][a-z]+)*Error\b/],
  ['an exception message', /Unexpected token|at position \d|undefined is not|cannot read propert|is not a function/i],
];

/**
 * Quoted text within one message, left out: "…" or '…' (a quote opening after a letter or
 * digit is an apostrophe, as in "agent's", not a quote).
 */
const unquoted = (text: string) => text.replace(/"(?:[^"\\]|\\.)*"|(?<![\p{L}\p{N}])'[^']*'/gu, '""');

/** Every string value in an error body, however deep (details may nest); not the keys, which the shape checks fix. */
function textsOf(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(textsOf);
  if (value !== null && typeof value === 'object') return Object.values(value).flatMap(textsOf);
  return [];
}

/** The first leak in an error body, as [what, the message it is in], if any. */
function findLeak(body: unknown): [string, string] | undefined {
  for (const text of textsOf(body)) {
    const visible = unquoted(text);
    for (const [what, pattern] of LEAKS) if (pattern.test(visible)) return [what, text];
  }
  return undefined;
}

function summarize(request: RawRequest): string {
  const show = (value: unknown) => {
    const text = Buffer.isBuffer(value) ? value.toString('latin1') : String(value);
    return JSON.stringify(text.length > 300 ? `${text.slice(0, 300)}…(${text.length})` : text);
  };
  const headers = (request.headers ?? []).map(([name, value]) => `${show(name)}: ${show(value)}`).join(', ');
  return `${request.method} ${show(request.target)} headers [${headers}] body ${request.body === undefined ? '(none)' : show(request.body)}`;
}

/** The oracle. Throws, naming the request and what is wrong with its answer. */
export function checkSoundReply(request: RawRequest, reply: RawReply, options: SoundnessOptions = {}): void {
  const fail = (problem: string): never => {
    throw new Error(`${problem}\n  request: ${summarize(request)}\n  answer: ${reply.status} ${reply.text.slice(0, 600)}`);
  };
  if (!reply.headers['x-request-id']) {
    // Refused by Node's HTTP parser before the application saw it: invalid bytes in the
    // request line or a header, an unknown method, headers too large, a refused Expect.
    if (![400, 417, 431].includes(reply.status)) fail(`the HTTP layer answered ${reply.status}`);
    // Node answers a refused Expect itself, bare; parser refusals get the API error shape.
    if (reply.status === 417) return void (reply.body.length > 0 && fail('the HTTP layer answered 417 with a body'));
    if (request.method.toUpperCase() === 'HEAD') return; // no body in an answer to HEAD
    const body = reply.json as Record<string, unknown> | undefined;
    if (body?.code !== 'VALIDATION_ERROR' || typeof body.message !== 'string' || Object.keys(body).length !== 2) {
      fail('a request the HTTP parser refused was not answered in the documented error shape');
    }
    return;
  }
  const requestId = reply.headers['x-request-id'][0];
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(requestId)) fail('X-Request-Id echoes something that is not a request id');
  if (reply.status >= 500) fail(`a ${reply.status}`);
  const method = request.method.toUpperCase();
  const pathname = String(request.target).split('?')[0];
  if (method === 'OPTIONS' && reply.status === 200 && (!reply.headers.allow || reply.body.length > 0)) fail('OPTIONS answered 200 without Allow, or with a body');
  if (reply.status >= 400 && method !== 'HEAD') {
    const body = reply.json as Record<string, unknown> | undefined;
    if (!body || typeof body !== 'object' || Array.isArray(body)) return fail('an error that is not a JSON object');
    if (!/^application\/json/.test(reply.headers['content-type']?.[0] ?? '')) fail('an error that is not application/json');
    const isOAuthShape = typeof body.error === 'string';
    const isGrantError = GRANT_ENDPOINTS.has(pathname) && GRANT_ERROR_STATUSES.has(reply.status);
    if (isGrantError && !isOAuthShape) fail('a grant endpoint answered a grant error in the API shape');
    if (!isGrantError && isOAuthShape) fail('an error outside a grant in the OAuth shape');
    if (isOAuthShape) {
      if (Object.keys(body).sort().join() !== 'error,error_description') fail('an OAuth error with other members than error and error_description');
      if (typeof body.error_description !== 'string' || !OAUTH_CODES.has(body.error as string)) fail('an OAuth error with an unknown code');
    } else {
      const extra = Object.keys(body).filter((name) => !['code', 'message', 'details'].includes(name));
      if (extra.length > 0 || typeof body.message !== 'string') fail('an API error not shaped {code, message, details?}');
      if (!API_STATUS_OF[body.code as string]?.includes(reply.status)) fail(`code ${String(body.code)} with status ${reply.status}`);
      if (body.details !== undefined && (typeof body.details !== 'object' || body.details === null)) fail('details that are not an object');
    }
    const leak = findLeak(body);
    if (leak) fail(`${leak[0]} in an error body: ${JSON.stringify(leak[1].slice(0, 300))}`);
  }
  if (options.documented) {
    try {
      assertDocumentedReply(method, pathname, { status: reply.status, headers: toHeaders(reply.headers), body: reply.json, text: reply.text });
    } catch (error) {
      fail((error as Error).message);
    }
  }
}

function toHeaders(raw: Record<string, string[]>): Headers {
  const headers = new Headers();
  for (const [name, values] of Object.entries(raw)) for (const value of values) headers.append(name, value);
  return headers;
}

/** A request target the OpenAPI oracle can place: no dot segments and nothing a URL parser would rewrite. */
export function isPlainTarget(target: string): boolean {
  return /^\/[A-Za-z0-9\-._~%/?=&:+@!$'()*,;]*$/.test(target) && !/(?:^|\/)(?:\.|%2e){1,2}(?:[/?#]|$)/i.test(target);
}
