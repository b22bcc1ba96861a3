/**
 * What the listener answers before the database is ready (migrations, keys, or a database
 * still being waited for): the process is alive (`/healthz` 200), not ready (`/readyz`
 * 503), and every other request is told to come back, in the documented error shape.
 * The app takes over the listener once start-up is done (server.ts).
 */
import crypto from 'node:crypto';
import type http from 'node:http';

/** Seconds a client is asked to wait before it tries again. */
const RETRY_AFTER_SECONDS = 5;

export function answerWhileStarting(request: http.IncomingMessage, response: http.ServerResponse): void {
  const path = (request.url ?? '/').split('?')[0];
  const isRead = request.method === 'GET' || request.method === 'HEAD';
  const [status, body] =
    isRead && path === '/healthz'
      ? [200, { status: 'ok' }]
      : [503, { code: 'SERVICE_UNAVAILABLE', message: 'The service is starting and not ready yet. Please retry shortly.' }];
  const text = JSON.stringify(body);
  // As http/observability.ts does: the caller's id when well formed, else one of ours.
  const incoming = request.headers['x-request-id'];
  const requestId = typeof incoming === 'string' && /^[A-Za-z0-9._-]{1,64}$/.test(incoming) ? incoming : crypto.randomUUID();
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'X-Content-Type-Options': 'nosniff',
    'X-Request-Id': requestId,
    'Cache-Control': 'no-store',
    ...(status === 503 ? { 'Retry-After': String(RETRY_AFTER_SECONDS) } : {}),
  });
  // RFC 9110 §9.3.2: HEAD gets GET's headers and no body.
  response.end(request.method === 'HEAD' ? undefined : text);
}
