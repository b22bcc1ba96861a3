/** Structured JSON logs. Nothing logs request bodies or headers; the redaction list is a
 * second line of defence should a secret-bearing object ever reach a log call. */
import pino, { type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export const REDACTED_PATHS = [
  '*.authorization',
  '*.Authorization',
  '*.client_secret',
  '*.clientSecret',
  '*.access_token',
  '*.token',
  '*.password',
  '*.private_jwk',
];

const FLUSH_INTERVAL_MS = 1_000;

/**
 * Standard output is written in batches (one write per 4 KiB, or per second at the
 * latest) rather than a system call per request line; `flush` on shutdown.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  const stream = destination ?? pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const logger = pino(
    { level, base: { service: 'sentryagent-idp', pid: process.pid }, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, timestamp: isoTimeOncePerMillisecond() },
    stream,
  );
  if (!destination) setInterval(() => logger.flush(), FLUSH_INTERVAL_MS).unref();
  return logger;
}

/** pino's isoTime, formatted once per millisecond: under load many lines share one. */
function isoTimeOncePerMillisecond(): () => string {
  let formattedAt = -1;
  let formatted = '';
  return () => {
    const now = Date.now();
    if (now !== formattedAt) {
      formattedAt = now;
      formatted = `,"time":"${new Date(now).toISOString()}"`;
    }
    return formatted;
  };
}
