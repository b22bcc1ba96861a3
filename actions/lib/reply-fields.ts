/**
 * The IdP's 2xx replies, read field by field against the shapes the contract gives them.
 * What an action takes from a reply reaches outputs and log lines, and the runner obeys
 * any log line that starts with `::` as a workflow command: an `agentId` holding
 * "abc\n::error::…" once printed that command itself. Every shape here leaves no room for
 * a line break, so a field is used only once it fits; one that does not fails the step
 * as a server defect, named by its field and never shown (its content may be the attack).
 */
import { UnexpectedResponseError } from './errors.js';
import { COMPACT_JWS, ISO_8601_DATE_TIME, SCOPE_LIST, UUID } from './formats.js';
import { readJsonObject, type IdpAnswer } from './idp-client.js';

export interface FieldShape<T> {
  /** Completes "<field> is not …". */
  readonly expected: string;
  /** The value in the form the action uses it, or undefined when it does not fit. */
  read(value: unknown): T | undefined;
}

const matching = (pattern: RegExp, maxChars: number) => (value: unknown) =>
  typeof value === 'string' && value.length <= maxChars && pattern.test(value) ? value : undefined;

export const AGENT_ID: FieldShape<string> = { expected: 'a UUID', read: matching(UUID, 36) };

export const SCOPE: FieldShape<string> = {
  expected: 'space-separated RFC 6749 scope tokens',
  read: matching(SCOPE_LIST, 4096),
};

/** Read as the IdP writes it (`toISOString`), whatever offset or precision it came with. */
export const DATE_TIME: FieldShape<string> = {
  expected: 'an ISO 8601 date-time',
  read: (value) => {
    if (typeof value !== 'string' || !ISO_8601_DATE_TIME.test(value)) return undefined;
    const ms = Date.parse(value);
    return Number.isNaN(ms) ? undefined : new Date(ms).toISOString();
  },
};

// The IdP's own ID-token limit; its access tokens are a few kilobytes at most.
export const ACCESS_TOKEN: FieldShape<string> = { expected: 'a compact JWS', read: matching(COMPACT_JWS, 16_384) };

/** RFC 6749 §5.1: the value is case insensitive. */
export const BEARER: FieldShape<'Bearer'> = {
  expected: 'Bearer',
  read: (value) => (typeof value === 'string' && value.toLowerCase() === 'bearer' ? 'Bearer' : undefined),
};

// Bounded so that now + lifetime stays a date (about 68 years).
export const LIFETIME_SECONDS: FieldShape<number> = {
  expected: 'a positive whole number of seconds',
  read: (value) => (typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 2 ** 31 ? value : undefined),
};

export const BOOLEAN: FieldShape<boolean> = {
  expected: 'a boolean',
  read: (value) => (typeof value === 'boolean' ? value : undefined),
};

export interface ReplyFields {
  /** The field in its shape; an UnexpectedResponseError when it is missing or does not fit. */
  required<T>(field: string, shape: FieldShape<T>): T;
  /** Undefined when absent; an UnexpectedResponseError when present and not fitting. */
  optional<T>(field: string, shape: FieldShape<T>): T | undefined;
}

/** The 2xx body as a JSON object whose fields are handed out only in their shapes. */
export function readReplyFields(answer: IdpAnswer): ReplyFields {
  const body = readJsonObject(answer);
  const readPresent = <T>(field: string, shape: FieldShape<T>): T => {
    const value = shape.read(body[field]);
    if (value === undefined) {
      throw new UnexpectedResponseError(answer.url, answer.status, `${field} is not ${shape.expected}`);
    }
    return value;
  };
  return {
    required: (field, shape) => {
      if (!Object.hasOwn(body, field)) throw new UnexpectedResponseError(answer.url, answer.status, `no ${field} in the body`);
      return readPresent(field, shape);
    },
    optional: (field, shape) => (Object.hasOwn(body, field) ? readPresent(field, shape) : undefined),
  };
}
