/**
 * Request bodies: one reader with a size limit, strict UTF-8 and an exact media type.
 * Forms reject repeated parameters (RFC 6749 §3.2); JSON must be an object.
 */
import type { Context } from 'koa';
import getRawBody from 'raw-body';
import { PayloadTooLarge, quotable, ValidationFailed } from '../errors.js';

const FORM = 'application/x-www-form-urlencoded';
const JSON_TYPE = 'application/json';
export const BODY_LIMIT_BYTES = 64 * 1024;
const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

function mediaTypeOf(ctx: Context): { type: string; charset: string | undefined } | undefined {
  const header = ctx.get('Content-Type');
  if (!header) return undefined;
  const [type, ...params] = header.split(';').map((part) => part.trim().toLowerCase());
  const charsetParam = params.find((param) => param.startsWith('charset='));
  const charset = charsetParam?.slice('charset='.length).replace(/^"|"$/g, '');
  return { type, charset };
}

async function readText(ctx: Context): Promise<string> {
  const encoding = ctx.get('Content-Encoding').trim().toLowerCase();
  if (encoding && encoding !== 'identity') throw new ValidationFailed('Content-Encoding is not supported; send the body uncompressed.');
  let raw: Buffer;
  try {
    raw = await getRawBody(ctx.req, { limit: BODY_LIMIT_BYTES, length: ctx.get('Content-Length') || undefined });
  } catch (error) {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') {
      throw new PayloadTooLarge(`The request body exceeds ${BODY_LIMIT_BYTES} bytes.`);
    }
    throw new ValidationFailed('The request body could not be read.');
  }
  try {
    return strictUtf8.decode(raw);
  } catch {
    throw new ValidationFailed('The request body is not valid UTF-8.');
  }
}

function requireMediaType(ctx: Context, accepted: readonly string[]): string {
  const media = mediaTypeOf(ctx);
  if (!media || !accepted.includes(media.type)) {
    throw new ValidationFailed(`Content-Type must be ${accepted.join(' or ')}.`);
  }
  if (media.charset !== undefined && media.charset !== 'utf-8' && media.charset !== 'utf8') {
    throw new ValidationFailed('Only the UTF-8 charset is supported.');
  }
  return media.type;
}

/**
 * The pairs of a form body, as URLSearchParams reads them. A body with no '%' and no '+'
 * (tokens, secrets and ids are all like that) has nothing to decode, so it is split
 * directly, which is several times cheaper than the general parser.
 */
function formPairs(text: string): Iterable<[string, string]> {
  if (text.includes('%') || text.includes('+')) return new URLSearchParams(text);
  const pairs: [string, string][] = [];
  for (const sequence of text.split('&')) {
    if (sequence === '') continue;
    const equals = sequence.indexOf('=');
    pairs.push(equals < 0 ? [sequence, ''] : [sequence.slice(0, equals), sequence.slice(equals + 1)]);
  }
  return pairs;
}

/** Parses a form body into single-valued parameters; a repeated name is refused. */
export function parseForm(text: string): Record<string, string> {
  const params: Record<string, string> = Object.create(null);
  for (const [name, value] of formPairs(text)) {
    if (name in params) {
      const shown = quotable(name);
      throw new ValidationFailed(shown ? `The '${shown}' parameter must not be repeated.` : 'A parameter must not be repeated.');
    }
    params[name] = value;
  }
  return params;
}

function parseJsonObject(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ValidationFailed('The request body is not valid JSON.');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ValidationFailed('The request body must be a JSON object.');
  }
  return value as Record<string, unknown>;
}

export async function readForm(ctx: Context): Promise<Record<string, string>> {
  requireMediaType(ctx, [FORM]);
  return parseForm(await readText(ctx));
}

export async function readJson(ctx: Context): Promise<Record<string, unknown>> {
  requireMediaType(ctx, [JSON_TYPE]);
  return parseJsonObject(await readText(ctx));
}

/** For endpoints documented as "JSON or form" (the GitHub exchange). */
export async function readJsonOrForm(ctx: Context): Promise<Record<string, unknown>> {
  const type = requireMediaType(ctx, [JSON_TYPE, FORM]);
  const text = await readText(ctx);
  return type === FORM ? parseForm(text) : parseJsonObject(text);
}
