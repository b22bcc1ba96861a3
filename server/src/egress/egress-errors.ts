/**
 * The egress guard's two errors (egress-guard.ts): EgressRefused when the policy said no,
 * EgressFailed when a permitted request did not succeed. Messages name the URL without its
 * query and never quote what a server sent.
 */
/** What the policy refused: a URL it cannot judge, the scheme, an address, a redirect. */
export type EgressRefusal = 'url' | 'scheme' | 'address' | 'redirect';
/** What went wrong with a permitted request. */
export type EgressFailure = 'resolve' | 'network' | 'timeout' | 'size' | 'status' | 'json';

export class EgressRefused extends Error {
  constructor(
    readonly reason: EgressRefusal,
    message: string,
  ) {
    super(message);
    this.name = 'EgressRefused';
  }
}

export class EgressFailed extends Error {
  constructor(
    readonly reason: EgressFailure,
    message: string,
    /** The HTTP status, for reason `status`. */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'EgressFailed';
  }
}

/** An error's code (ECONNREFUSED, ENOTFOUND, …) or message: never anything a server sent. */
export function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string') return code;
  return error instanceof Error ? error.message : String(error);
}
