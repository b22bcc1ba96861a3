/** Validation at the edge: one schema library, its errors rendered as VALIDATION_ERROR. */
import { z } from 'zod';
import { isUuid } from '../config.js';
import { quotable, ValidationFailed } from '../errors.js';

/** Zod names unknown keys in its message; only the quotable ones are named here. */
function messageOf(issue: z.core.$ZodIssue): string {
  if (issue.code !== 'unrecognized_keys') return issue.message;
  const names = issue.keys.map((key) => (quotable(key) ? `"${key}"` : '(a key not shown)'));
  return `Unrecognized key${names.length > 1 ? 's' : ''}: ${names.join(', ')}`;
}

export function parseWith<T>(schema: z.ZodType<T>, value: unknown, what = 'The request'): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({ path: issue.path.join('.'), message: messageOf(issue) }));
  const first = issues[0];
  throw new ValidationFailed(`${what} is invalid${first?.path ? `: ${first.path}: ${first.message}` : first ? `: ${first.message}` : ''}.`, {}, { issues });
}

export function requireUuid(value: string, name: string): string {
  if (!isUuid(value)) throw new ValidationFailed(`${name} must be a UUID.`);
  return value.toLowerCase();
}

const CONTROL_CHARACTER = /[\u0000-\u001f\u007f]/;
// PostgreSQL text cannot hold NUL (the insert fails), and a lone surrogate would be
// stored as U+FFFD, so that what is read back differs from what was accepted.
const UNSTORABLE = /\u0000|[\ud800-\udfff]/u;
export const isStorableText = (value: string): boolean => !UNSTORABLE.test(value);
const isPrintable = (value: string) => !CONTROL_CHARACTER.test(value);

/**
 * An RFC 3339 instant both databases take: UTC years 0001 to 9999. PostgreSQL has no year
 * 0000, and a JavaScript Date past 9999 is written with a six-digit year.
 */
export function isStorableInstant(value: string): boolean {
  const year = new Date(value).getUTCFullYear();
  return year >= 1 && year <= 9999;
}

/** Free text such as a description: line breaks and tabs allowed, NUL and lone surrogates not. */
export const freeText = (max: number) => z.string().max(max).refine(isStorableText, 'must be Unicode text without NUL characters');

/** Text matched exactly against what GitHub sends (an environment name, a workflow ref): printable, not trimmed. */
export const exactText = (max: number) =>
  z.string().min(1).max(max).refine(isPrintable, 'must not contain control characters').refine(isStorableText, 'must be valid Unicode text');

/** Printable text without control characters. */
export const displayText = (max: number) =>
  z.string().trim().min(1).max(max).refine(isPrintable, 'must not contain control characters').refine(isStorableText, 'must be valid Unicode text');

export const pageLimit = z.coerce.number().int().min(1).max(100).default(50);

export function encodeCursor(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodeCursor<T>(cursor: string | undefined, schema: z.ZodType<T>): T | undefined {
  if (cursor === undefined) return undefined;
  try {
    return schema.parse(JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')));
  } catch {
    throw new ValidationFailed('cursor is not a cursor this server returned.');
  }
}
