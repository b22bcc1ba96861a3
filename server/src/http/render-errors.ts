/**
 * The one error renderer, mounted first. An error knows its status and codes
 * (../errors.ts); the endpoint says which family it answers in (`endpoint()`): a grant
 * endpoint renders grant errors as RFC 6749 `{error, error_description}`, and everything
 * else, on every endpoint, is `{code, message, details?}`. Anything unknown is logged
 * with detail and answered as a generic 500.
 */
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { InternalError, MethodNotAllowed, NotFound, RequestNotUnderstood, ServiceError, ServiceUnavailable } from '../errors.js';
import { isDatabaseUnavailable } from '../storage/database.js';

export interface EndpointErrors {
  /** 'oauth': a grant endpoint (RFC 6749 §5.2); 'api': the `{code, message}` envelope. */
  readonly family: 'oauth' | 'api';
  /** Token endpoints: no answer, refusals included, may be cached (RFC 6749 §5.1). */
  readonly isNoStore: boolean;
}

/** Declares how errors of `handler` are answered. */
export function endpoint(errors: EndpointErrors, handler: (ctx: Context) => Promise<void>) {
  return function declaredEndpoint(ctx: Context): Promise<void> {
    ctx.state.endpointErrors = errors;
    return handler(ctx);
  };
}

export function renderErrors(logger: Logger) {
  return async function renderErrorsMiddleware(ctx: Context, next: Next): Promise<void> {
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new NotFound('Endpoint', 'No such endpoint.');
      // The router answers a method it does not implement at all (TRACE, PROPFIND…) with 501;
      // to a client it is one more method this endpoint does not allow.
      if ((ctx.status === 405 || ctx.status === 501) && !ctx.body) throw new MethodNotAllowed('Method not allowed on this endpoint.');
    } catch (caught) {
      const error = toServiceError(caught, logger, ctx);
      const declared = ctx.state.endpointErrors as EndpointErrors | undefined;
      ctx.status = error.status;
      ctx.set(error.headers);
      if (declared?.isNoStore) {
        ctx.set('Cache-Control', 'no-store');
        ctx.set('Pragma', 'no-cache');
      }
      ctx.body =
        declared?.family === 'oauth' && error.oauthCode
          ? { error: error.oauthCode, error_description: error.message }
          : { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) };
    }
  };
}

function toServiceError(caught: unknown, logger: Logger, ctx: Context): ServiceError {
  if (caught instanceof ServiceError) return caught;
  if (isDatabaseUnavailable(caught)) {
    logger.warn({ err: describe(caught), path: ctx.path }, 'database unavailable');
    return new ServiceUnavailable();
  }
  // Errors from Koa and its body readers (http-errors) that are safe to show: 4xx only.
  const status = (caught as { status?: unknown })?.status;
  if (typeof status === 'number' && status >= 400 && status < 500 && (caught as { expose?: boolean }).expose) {
    return new RequestNotUnderstood(status);
  }
  logger.error({ err: describe(caught), method: ctx.method, path: ctx.path }, 'unhandled error');
  return new InternalError();
}

/** Error detail for the log: name, message, code and stack, never request data. */
function describe(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return { value: String(error) };
  return { name: error.name, message: error.message, code: (error as { code?: unknown }).code, stack: error.stack };
}
