/**
 * Errors are values with a shape. The token endpoints speak OAuth (`OAuthError`,
 * rendered `{error, error_description}`); everything else speaks `ApiError`
 * (`{code, message, details?}`). Code throws them; `renderErrors` renders them.
 */

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'access_denied'
  | 'invalid_token'
  | 'insufficient_scope'
  | 'rate_limit_exceeded'
  | 'temporarily_unavailable'
  | 'server_error';

export class OAuthError extends Error {
  readonly expose = true;
  constructor(
    readonly status: number,
    readonly error: OAuthErrorCode,
    readonly description: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(description);
    this.name = 'OAuthError';
  }
}

export const invalidRequest = (description: string) => new OAuthError(400, 'invalid_request', description);
export const invalidGrant = (description: string) => new OAuthError(400, 'invalid_grant', description);
export const invalidScope = (description: string) => new OAuthError(400, 'invalid_scope', description);
export const unsupportedGrantType = () =>
  new OAuthError(400, 'unsupported_grant_type', "Only 'client_credentials' grant type is supported.");
export const unauthorizedClient = (description: string, headers: Record<string, string> = {}) =>
  new OAuthError(403, 'unauthorized_client', description, headers);
export const accessDenied = (description: string) => new OAuthError(403, 'access_denied', description);

/** RFC 6749 §5.2: a 401 carries WWW-Authenticate when the client tried HTTP Basic. */
export function invalidClient(usedBasicAuth: boolean): OAuthError {
  return new OAuthError(
    401,
    'invalid_client',
    'Client authentication failed. Invalid client_id or client_secret.',
    usedBasicAuth ? { 'WWW-Authenticate': 'Basic realm="sentryagent", charset="UTF-8"' } : {},
  );
}

/** RFC 6750 §3: a protected token endpoint refusing the caller's Bearer token. */
export function invalidToken(description = 'A valid Bearer token is required.'): OAuthError {
  return new OAuthError(401, 'invalid_token', description, {
    'WWW-Authenticate': 'Bearer realm="sentryagent", error="invalid_token"',
  });
}

export function insufficientScope(scope: string): OAuthError {
  return new OAuthError(403, 'insufficient_scope', `The '${scope}' scope is required.`, {
    'WWW-Authenticate': `Bearer realm="sentryagent", error="insufficient_scope", scope="${scope}"`,
  });
}

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

export class ApiError extends Error {
  readonly expose = true;
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const validationError = (message: string, details?: Record<string, unknown>) =>
  new ApiError(400, 'VALIDATION_ERROR', message, details);
export const notFound = (what: string) => new ApiError(404, 'NOT_FOUND', `${what} not found.`);
export const conflict = (message: string) => new ApiError(409, 'CONFLICT', message);
export const forbidden = (message: string) => new ApiError(403, 'FORBIDDEN', message);

/** RFC 6750 §3.1: `error="invalid_token"` when a token was presented and refused; no error code when none was. */
export const unauthorized = (message = 'A valid Bearer token is required to access this resource.', isTokenPresented = false) =>
  new ApiError(401, 'UNAUTHORIZED', message, undefined, {
    'WWW-Authenticate': isTokenPresented ? 'Bearer realm="sentryagent", error="invalid_token"' : 'Bearer realm="sentryagent"',
  });
export const insufficientScopeApi = (scope: string) =>
  new ApiError(403, 'INSUFFICIENT_SCOPE', `The '${scope}' scope is required.`, undefined, {
    'WWW-Authenticate': `Bearer realm="sentryagent", error="insufficient_scope", scope="${scope}"`,
  });
export const serviceUnavailable = () =>
  new ApiError(503, 'SERVICE_UNAVAILABLE', 'The service is temporarily unavailable. Please retry shortly.', undefined, {
    'Retry-After': '1',
  });
