/**
 * Errors by meaning. Code anywhere (services, stores, edges) throws one of these; each
 * knows its status, its `{code, message}` code, and, for what can go wrong with a grant
 * itself, its RFC 6749 §5.2 code. The endpoint decides which family it answers in
 * (http/render-errors.ts): a grant endpoint renders a grant error as `{error,
 * error_description}`, and everything else, 429 and 5xx included, as `{code, message}`
 * (CONTRACT.md, Errors; seed 002).
 */

export type ApiErrorCode =
  | 'VALIDATION_ERROR'
  | 'UNAUTHORIZED'
  | 'INSUFFICIENT_SCOPE'
  | 'FORBIDDEN'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'RATE_LIMIT_EXCEEDED'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'access_denied';

type Headers = Record<string, string>;

/**
 * Text a client sent, fit to quote back in an error message or the audit log: short and
 * shaped like a name (a field, a parameter, a scope). Anything else may be a secret or a
 * token sent in the wrong place, and is not repeated.
 */
export function quotable(text: string): string | undefined {
  return /^[A-Za-z][A-Za-z0-9_.:-]{0,31}$/.test(text) ? text : undefined;
}

export abstract class ServiceError extends Error {
  /** Koa's convention: the message is fit for the client. */
  readonly expose = true;
  abstract readonly status: number;
  abstract readonly code: ApiErrorCode;
  /** How a grant endpoint names it; undefined: answered as `{code, message}` everywhere. */
  readonly oauthCode: OAuthErrorCode | undefined = undefined;

  constructor(
    message: string,
    readonly headers: Headers = {},
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request is malformed or a value is invalid (400). */
export class ValidationFailed extends ServiceError {
  readonly status: number = 400;
  readonly code = 'VALIDATION_ERROR';
  override readonly oauthCode = 'invalid_request';
}

/** RFC 9110 §15.5.14: the body is over the limit. */
export class PayloadTooLarge extends ValidationFailed {
  override readonly status = 413;
}

export class MethodNotAllowed extends ValidationFailed {
  override readonly status = 405;
}

/** A 4xx that Koa or a body reader raised (http-errors), shown without its detail. */
export class RequestNotUnderstood extends ValidationFailed {
  constructor(override readonly status: number) {
    super('The request could not be understood.');
  }
}

/** No Bearer token, or one that is not an active token of ours (RFC 6750 §3.1). */
export class Unauthenticated extends ServiceError {
  readonly status = 401;
  readonly code = 'UNAUTHORIZED';
  constructor(message = 'A valid Bearer token is required to access this resource.', isTokenPresented = false) {
    super(message, {
      'WWW-Authenticate': isTokenPresented ? 'Bearer realm="sentryagent", error="invalid_token"' : 'Bearer realm="sentryagent"',
    });
  }
}

/** The caller's token lacks the scope the operation needs (RFC 6750 §3.1). */
export class InsufficientScope extends ServiceError {
  readonly status = 403;
  readonly code = 'INSUFFICIENT_SCOPE';
  constructor(readonly scope: string) {
    super(`The '${scope}' scope is required.`, {
      'WWW-Authenticate': `Bearer realm="sentryagent", error="insufficient_scope", scope="${scope}"`,
    });
  }
}

/** The caller holds the scope but a rule forbids this act (no escalation, not its token). */
export class Forbidden extends ServiceError {
  readonly status = 403;
  readonly code = 'FORBIDDEN';
}

export class NotFound extends ServiceError {
  readonly status = 404;
  readonly code = 'NOT_FOUND';
  constructor(what: string, message = `${what} not found.`) {
    super(message);
  }
}

/** The resource's state forbids the change (e.g. the agent has been decommissioned). */
export class Conflict extends ServiceError {
  readonly status = 409;
  readonly code = 'CONFLICT';
}

/** Every 429 (seed 002's TooManyRequests), the token endpoints' included. */
export class RateLimited extends ServiceError {
  readonly status = 429;
  readonly code = 'RATE_LIMIT_EXCEEDED';
  constructor(headers: Headers) {
    super('Too many requests. Please retry after the rate limit window resets.', headers);
  }
}

/** The database, or an issuer we depend on, cannot be reached: retry shortly. */
export class ServiceUnavailable extends ServiceError {
  readonly status = 503;
  readonly code = 'SERVICE_UNAVAILABLE';
  constructor(message = 'The service is temporarily unavailable. Please retry shortly.', retryAfterSeconds = 1) {
    super(message, { 'Retry-After': String(retryAfterSeconds) });
  }
}

export class InternalError extends ServiceError {
  readonly status = 500;
  readonly code = 'INTERNAL_SERVER_ERROR';
  constructor() {
    super('An unexpected error occurred. Please try again later.');
  }
}

/**
 * What goes wrong with a grant itself (RFC 6749 §5.2). Thrown only by the grant endpoints'
 * services; rendered elsewhere it would read as its API equivalent.
 */
export abstract class GrantError extends ServiceError {}

export class InvalidRequest extends GrantError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  readonly oauthCode = 'invalid_request';
}

/**
 * RFC 6749 §5.2: a 401 carries WWW-Authenticate when the client tried HTTP Basic; and the
 * state of the client_id's window of failed authentications, when it was counted.
 */
export class InvalidClient extends GrantError {
  readonly status = 401;
  readonly code = 'UNAUTHORIZED';
  readonly oauthCode = 'invalid_client';
  constructor(usedBasicAuth: boolean, rateLimitHeaders: Headers = {}) {
    super('Client authentication failed. Invalid client_id or client_secret.', {
      ...rateLimitHeaders,
      ...(usedBasicAuth ? { 'WWW-Authenticate': 'Basic realm="sentryagent", charset="UTF-8"' } : {}),
    });
  }
}

export class InvalidGrant extends GrantError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  readonly oauthCode = 'invalid_grant';
}

/** RFC 8707 §2: the `resource` asked for is not one this server issues tokens for. */
export class InvalidTarget extends GrantError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  readonly oauthCode = 'invalid_target';
}

export class InvalidScope extends GrantError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  readonly oauthCode = 'invalid_scope';
}

export class UnsupportedGrantType extends GrantError {
  readonly status = 400;
  readonly code = 'VALIDATION_ERROR';
  readonly oauthCode = 'unsupported_grant_type';
  constructor() {
    super("Only 'client_credentials' grant type is supported.");
  }
}

/** The client is known but may not have a token now (suspended, over its quota). */
export class UnauthorizedClient extends GrantError {
  readonly status = 403;
  readonly code = 'FORBIDDEN';
  readonly oauthCode = 'unauthorized_client';
}

/** A trust policy refused the workflow. */
export class AccessDenied extends GrantError {
  readonly status = 403;
  readonly code = 'FORBIDDEN';
  readonly oauthCode = 'access_denied';
}
