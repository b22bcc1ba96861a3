/**
 * The one error renderer, mounted first. Paths of the token endpoints answer in the
 * OAuth shape, everything else in the API shape; shared middleware (body limits, Bearer
 * auth, rate limits) throws ApiError and is translated here for the token endpoints.
 * Anything unknown is logged with detail and answered as a generic 500.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../storage/database.js';
import { ApiError, OAuthError, serviceUnavailable, type ApiErrorCode, type OAuthErrorCode } from './errors.js';

const OAUTH_PATHS = /^\/api\/v1\/(token(\/|$)|oidc\/token\/?$|oidc\/register\/?$)/;

export function isOAuthPath(path: string): boolean {
  return OAUTH_PATHS.test(path);
}

const OAUTH_CODE_OF: Record<ApiErrorCode, OAuthErrorCode> = {
  VALIDATION_ERROR: 'invalid_request',
  UNAUTHORIZED: 'invalid_token',
  INSUFFICIENT_SCOPE: 'insufficient_scope',
  FORBIDDEN: 'unauthorized_client',
  NOT_FOUND: 'invalid_request',
  CONFLICT: 'invalid_request',
  RATE_LIMIT_EXCEEDED: 'rate_limit_exceeded',
  SERVICE_UNAVAILABLE: 'temporarily_unavailable',
  INTERNAL_SERVER_ERROR: 'server_error',
};

const API_CODE_OF_STATUS: Record<number, ApiErrorCode> = {
  401: 'UNAUTHORIZED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  409: 'CONFLICT',
  429: 'RATE_LIMIT_EXCEEDED',
};

export function renderErrors(logger: Logger) {
  return async function renderErrorsMiddleware(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new ApiError(404, 'NOT_FOUND', 'No such endpoint.');
      // The router answers a method it does not implement at all (TRACE, PROPFIND…) with 501;
      // to a client it is one more method this endpoint does not allow.
      if ((ctx.status === 405 || ctx.status === 501) && !ctx.body) {
        throw new ApiError(405, 'VALIDATION_ERROR', 'Method not allowed on this endpoint.');
      }
    } catch (caught) {
      const error = toKnownError(caught, logger, ctx);
      ctx.status = error.status;
      for (const [name, value] of Object.entries(error.headers)) ctx.set(name, value);
      if (isOAuthPath(ctx.path)) {
        ctx.set('Cache-Control', 'no-store');
        ctx.set('Pragma', 'no-cache');
        ctx.body =
          error instanceof OAuthError
            ? { error: error.error, error_description: error.description }
            : { error: OAUTH_CODE_OF[error.code], error_description: error.message };
      } else {
        ctx.body =
          error instanceof ApiError
            ? { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) }
            : { code: API_CODE_OF_STATUS[error.status] ?? 'VALIDATION_ERROR', message: error.description };
      }
    }
  };
}

function toKnownError(caught: unknown, logger: Logger, ctx: Context): ApiError | OAuthError {
  if (caught instanceof ApiError || caught instanceof OAuthError) return caught;
  if (isDatabaseUnavailable(caught)) {
    logger.warn({ err: describe(caught), path: ctx.path }, 'database unavailable');
    return serviceUnavailable();
  }
  // Errors from Koa and its body readers (http-errors) that are safe to show: 4xx only.
  const status = (caught as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (caught as { expose?: boolean }).expose) {
    return new ApiError(status, status === 413 || status === 415 || status === 400 ? 'VALIDATION_ERROR' : API_CODE_OF_STATUS[status] ?? 'VALIDATION_ERROR', 'The request could not be understood.');
  }
  logger.error({ err: describe(caught), method: ctx.method, path: ctx.path }, 'unhandled error');
  return new ApiError(500, 'INTERNAL_SERVER_ERROR', 'An unexpected error occurred. Please try again later.');
}

/** Error detail for the log: name, message, code and stack, never request data. */
function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { value: String(error) };
  return { name: error.name, message: error.message, code: (error as { code?: unknown }).code, stack: error.stack };
}
