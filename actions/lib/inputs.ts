/**
 * Pure checks for action inputs. Each action's `readInputs()` reads the raw strings with
 * `@actions/core` and hands them here, collecting every problem into one `InputError`
 * so a user fixes all of them in one edit, before any request is made.
 */
import { SCOPE_TOKEN, UUID } from './formats.js';

export class InputError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid action inputs: ${problems.join('; ')}.`);
    this.name = 'InputError';
  }
}

/** Collects problems while the fields of one inputs object are checked. */
export class InputProblems {
  private readonly problems: string[] = [];

  add(problem: string): void {
    this.problems.push(problem);
  }

  /** Throws one error naming every problem found, if any. */
  throwIfAny(): void {
    if (this.problems.length > 0) throw new InputError(this.problems);
  }
}

const SHOWN_VALUE_MAX_CHARS = 80;

function show(value: string): string {
  const shown = value.length > SHOWN_VALUE_MAX_CHARS ? `${value.slice(0, SHOWN_VALUE_MAX_CHARS)}…` : value;
  return JSON.stringify(shown);
}

/** The IdP base URL without trailing slashes; `undefined` (and a problem) when unusable. */
export function checkApiUrl(name: string, value: string, problems: InputProblems): string | undefined {
  if (value === '') {
    problems.add(`\`${name}\` is required (the IdP base URL, e.g. https://idp.example.com)`);
    return undefined;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.add(`\`${name}\` must be an http(s) URL, got ${show(value)}`);
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.add(`\`${name}\` must be an http(s) URL, got ${show(value)}`);
    return undefined;
  }
  if (url.protocol === 'http:' && !isLoopbackHost(url.hostname)) {
    problems.add(
      `\`${name}\` must use https: plain http, which sends the GitHub ID token in clear, is accepted only for ` +
        `loopback (localhost, 127.0.0.0/8, [::1]), got ${show(value)}`,
    );
    return undefined;
  }
  if (url.search !== '' || url.hash !== '' || url.username !== '' || url.password !== '') {
    problems.add(`\`${name}\` must be a plain base URL with no query, fragment or credentials, got ${show(value)}`);
    return undefined;
  }
  const base = url.href.replace(/\/+$/, '');
  if (/\/api\/v1$/i.test(base)) {
    problems.add(`\`${name}\` must be the IdP base URL without /api/v1, got ${show(value)}`);
    return undefined;
  }
  return base;
}

/**
 * Loopback by name or address alone, never by a DNS answer (which whoever runs the
 * resolver chooses). `hostname` is as the WHATWG URL parser leaves it: lower-cased, IPv4
 * in dotted-quad form whatever way it was written (127.1, 0x7f000001), IPv6 bracketed
 * and compressed ([0:0:0:0:0:0:0:1] is [::1]).
 */
function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === 'localhost.' || hostname === '[::1]' || /^127(\.\d{1,3}){3}$/.test(hostname);
}

export function checkUuid(name: string, value: string, problems: InputProblems): string | undefined {
  if (value === '') {
    problems.add(`\`${name}\` is required (the agent's UUID)`);
    return undefined;
  }
  if (!UUID.test(value)) {
    problems.add(`\`${name}\` must be the agent's UUID, got ${show(value)}`);
    return undefined;
  }
  return value.toLowerCase();
}

export function checkRequired(name: string, value: string, problems: InputProblems): string | undefined {
  if (value === '') {
    problems.add(`\`${name}\` is required`);
    return undefined;
  }
  return value;
}

/** YAML 1.2 core-schema booleans, as `core.getBooleanInput` accepts; empty means `fallback`. */
export function checkBoolean(name: string, value: string, fallback: boolean, problems: InputProblems): boolean {
  if (value === '') return fallback;
  if (['true', 'True', 'TRUE'].includes(value)) return true;
  if (['false', 'False', 'FALSE'].includes(value)) return false;
  problems.add(`\`${name}\` must be true or false, got ${show(value)}`);
  return fallback;
}

/** Scope names separated by spaces, commas or newlines; empty input means none given. */
export function checkScopes(name: string, value: string, problems: InputProblems): string[] | undefined {
  const scopes = value.split(/[\s,]+/).filter((scope) => scope !== '');
  if (scopes.length === 0) return undefined;
  const invalid = scopes.filter((scope) => !SCOPE_TOKEN.test(scope));
  if (invalid.length > 0) {
    problems.add(`\`${name}\` has invalid scope names: ${invalid.map(show).join(', ')}`);
    return undefined;
  }
  return [...new Set(scopes)];
}
