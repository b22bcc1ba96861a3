/**
 * What can go wrong when an action talks to the IdP, as values. `describeFailure`
 * (failure-messages.ts) turns each into the one line a person reads in the job log.
 * None of them ever holds a token, and any text in them that the IdP wrote has been
 * through `toSafeLine`.
 */

/** `core.getIDToken` failed: no `id-token: write`, a fork pull request, or the runner's service failed. */
export class IdTokenUnavailableError extends Error {
  constructor(readonly reason: string) {
    super(`Failed to obtain a GitHub OIDC token: ${reason}`);
    this.name = 'IdTokenUnavailableError';
  }
}

/** A final answer from the IdP: a 3xx or a 4xx other than 408/429. Never retried. */
export class IdpRefusalError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    /** RFC 6749 `error`, or the API envelope's `code`. */
    readonly errorCode: string | undefined,
    /** RFC 6749 `error_description`, or the API envelope's `message`. */
    readonly description: string | undefined,
    readonly location?: string,
  ) {
    super(`HTTP ${status} from ${url}${errorCode ? ` (${errorCode})` : ''}`);
    this.name = 'IdpRefusalError';
  }
}

/** Every attempt failed transiently (network, 408, 429, 5xx) until the time budget ran out. */
export class IdpUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastReason: string,
  ) {
    super(`${url} unreachable after ${attempts} attempt(s): ${lastReason}`);
    this.name = 'IdpUnreachableError';
  }
}

/** A 2xx whose body is not what the contract promises. */
export class UnexpectedResponseError extends Error {
  constructor(
    readonly url: string,
    readonly status: number,
    readonly reason: string,
  ) {
    super(`Unexpected response from ${url}: HTTP ${status}, ${reason}`);
    this.name = 'UnexpectedResponseError';
  }
}

/**
 * Text we did not write (an IdP's error description, a library's message) as one line of
 * at most `maxChars` that cannot start a workflow command: line breaks of every kind
 * become spaces, other control and format characters (ANSI escapes, NUL, bidi overrides)
 * are dropped, and so are leading colons, since the runner obeys a line starting `::`.
 */
export function toSafeLine(text: string, maxChars = 300): string {
  const line = text
    .replace(/[\s\x85]+/g, ' ')
    .replace(/[\p{Cc}\p{Cf}]/gu, '')
    .replace(/ {2,}/g, ' ')
    .replace(/^[ :]+/, '')
    .trimEnd();
  const chars = Array.from(line);
  return chars.length > maxChars ? `${chars.slice(0, maxChars).join('').trimEnd()}…` : line;
}
