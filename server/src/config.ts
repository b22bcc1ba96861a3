/**
 * The only reader of process.env. `loadConfig` collects every problem into one
 * ConfigError whose message names each bad variable, and returns a frozen object that
 * is passed on, never re-read.
 */
import os from 'node:os';
import path from 'node:path';
import { parseCidr } from './egress/address-ranges.js';

export type SigningAlg = 'RS256' | 'ES256' | 'EdDSA';
export const SIGNING_ALGS: readonly SigningAlg[] = ['RS256', 'ES256', 'EdDSA'];
/** DATABASE_POOL_MODE: `transaction` behind a transaction-mode pooler (PgBouncer, RDS Proxy). */
export type PoolMode = 'session' | 'transaction';
export const POOL_MODES: readonly PoolMode[] = ['session', 'transaction'];
export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
const LOG_LEVELS: readonly LogLevel[] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly databaseUrl: string | undefined;
  /**
   * `transaction`: the connection may change between transactions (a transaction-mode
   * pooler), so no named prepared statements and no session advisory locks.
   */
  readonly databasePoolMode: PoolMode;
  /**
   * DATABASE_CONNECT_TIMEOUT_SECONDS: how long start-up retries a PostgreSQL that cannot be
   * reached before it gives up (0 = one attempt). Not used by the embedded database.
   */
  readonly databaseConnectTimeoutSeconds: number;
  readonly dataDir: string;
  readonly publicUrl: string;
  readonly tokenTtlSeconds: number;
  readonly signingAlg: SigningAlg;
  readonly rateLimitPerMinute: number;
  readonly monthlyTokenLimit: number;
  /** How often a signed digest of the audit chain is emitted (audit/audit-digests.ts). */
  readonly auditDigestIntervalSeconds: number;
  readonly githubOidcIssuer: string;
  readonly oidcAudience: string;
  /** TOKEN_AUDIENCES: the `aud` values a client may ask for with RFC 8707 `resource` (PUBLIC_URL is the default). */
  readonly tokenAudiences: readonly string[];
  readonly bootstrapAdmin: { readonly clientId: string; readonly clientSecret: string } | undefined;
  readonly logLevel: LogLevel;
  /** NODE_ENV=production: no bootstrap secret is generated (it would be printed into the system journal). */
  readonly isProduction: boolean;
  /**
   * KEY_ENCRYPTION_KEY: encrypts signing keys at rest. Unset: generated into DATA_DIR on
   * the embedded database (keys/key-ring.ts); on PostgreSQL outside production, keys are
   * stored in clear (with a warning at start); with NODE_ENV=production, required.
   */
  readonly keyEncryptionKey: SecretBytes | undefined;
  /** KEY_ENCRYPTION_KEY_PREVIOUS: the old KEK while `keys rewrap` moves every key to the new one. */
  readonly previousKeyEncryptionKey: SecretBytes | undefined;
  /**
   * Server processes on this machine, sharing one listening port. Default: one per core
   * when NODE_ENV=production on PostgreSQL, else 1. The embedded database is one process's.
   */
  readonly workers: number;
  /**
   * EGRESS_ALLOW_CIDRS: ranges outbound requests (partner keys, webhooks) may reach although
   * refused by default (loopback, private, …), and the only ones reachable over plain http
   * (egress/egress-guard.ts). Canonical CIDRs; none by default.
   */
  readonly egressAllowCidrs: readonly string[];
  /**
   * WEBHOOK_RETRY_SCHEDULE_SECONDS: the wait before each attempt of a webhook delivery, the
   * first attempt's included (each but the first ±10%). Default 0,5,300,1800,7200,18000,36000,36000.
   */
  readonly webhookRetryScheduleSeconds: readonly number[];
  /** WEBHOOK_TIMEOUT_SECONDS: how long a delivery attempt may take (15 s); a delivery is leased for twice that. */
  readonly webhookTimeoutSeconds: number;
}

/**
 * Key material read from the environment. It never prints: not in a log line, not in JSON,
 * not through util.inspect, should the configuration object ever reach one.
 */
export class SecretBytes {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = Buffer.from(bytes);
  }
  reveal(): Buffer {
    return this.#bytes;
  }
  toJSON(): string {
    return '[redacted]';
  }
  toString(): string {
    return '[redacted]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'SecretBytes [redacted]';
  }
}

const KEY_BYTES = 32;

/** 32 bytes in base64 (standard or URL-safe, padded or not), else undefined. */
export function parseKeyEncryptionKey(text: string): Buffer | undefined {
  if (!/^[A-Za-z0-9+/_-]{43}={0,1}$/.test(text)) return undefined;
  const bytes = Buffer.from(text.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  return bytes.length === KEY_BYTES ? bytes : undefined;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
/** Contract, Bootstrap: a chosen secret guards every scope, so it may not be short. */
export const MIN_BOOTSTRAP_SECRET_LENGTH = 32;

export function isUuid(value: string): boolean {
  return UUID.test(value);
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const problems: string[] = [];
  const text = (name: string): string | undefined => {
    const value = env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  };
  const integer = (name: string, fallback: number, min: number, max: number): number => {
    const raw = text(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      problems.push(`${name} must be a whole number from ${min} to ${max} (got "${raw}")`);
      return fallback;
    }
    return Number(raw);
  };
  const httpUrl = (name: string, raw: string, loopbackOnlyHttp: boolean): string => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      problems.push(`${name} must be an absolute http(s) URL (got "${raw}")`);
      return raw;
    }
    const isHttpAllowed = !loopbackOnlyHttp || LOOPBACK_HOSTS.has(url.hostname);
    if (!(url.protocol === 'https:' || (url.protocol === 'http:' && isHttpAllowed)) || url.search || url.hash) {
      problems.push(
        loopbackOnlyHttp
          ? `${name} must be an https URL (http only for loopback hosts) without query or fragment (got "${raw}")`
          : `${name} must be an http(s) URL without query or fragment (got "${raw}")`,
      );
    }
    return raw.replace(/\/+$/, '');
  };

  const port = integer('PORT', 3000, 0, 65535);
  const host = text('HOST') ?? '127.0.0.1';

  const databaseUrl = text('DATABASE_URL');
  if (databaseUrl !== undefined && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const databasePoolMode = text('DATABASE_POOL_MODE') ?? 'session';
  if (!POOL_MODES.includes(databasePoolMode as PoolMode)) {
    problems.push(`DATABASE_POOL_MODE must be one of ${POOL_MODES.join(', ')} (got "${databasePoolMode}")`);
  }
  const databaseConnectTimeoutSeconds = integer('DATABASE_CONNECT_TIMEOUT_SECONDS', 60, 0, 86_400);
  const dataDir = path.resolve(text('DATA_DIR') ?? './.data');
  const publicUrl = httpUrl('PUBLIC_URL', text('PUBLIC_URL') ?? `http://localhost:${port}`, false);
  const tokenTtlSeconds = integer('TOKEN_TTL_SECONDS', 3600, 1, 86_400);

  const alg = text('SIGNING_ALG') ?? 'RS256';
  if (!SIGNING_ALGS.includes(alg as SigningAlg)) {
    problems.push(`SIGNING_ALG must be one of ${SIGNING_ALGS.join(', ')} (got "${alg}")`);
  }
  const rateLimitPerMinute = integer('RATE_LIMIT_PER_MINUTE', 100, 0, 1_000_000_000);
  const monthlyTokenLimit = integer('MONTHLY_TOKEN_LIMIT', 10_000, 0, 1_000_000_000);
  const auditDigestIntervalSeconds = integer('AUDIT_DIGEST_INTERVAL_SECONDS', 3600, 1, 31_536_000);
  const githubOidcIssuer = httpUrl(
    'GITHUB_OIDC_ISSUER',
    text('GITHUB_OIDC_ISSUER') ?? 'https://token.actions.githubusercontent.com',
    true,
  );
  const oidcAudience = text('OIDC_AUDIENCE') ?? publicUrl;
  // RFC 8707: the resource servers a client may ask a token for, besides this server.
  const tokenAudiences = [
    ...new Set(
      (text('TOKEN_AUDIENCES') ?? '')
        .split(',')
        .map((value) => value.trim())
        .filter(Boolean)
        .map((value) => httpUrl('TOKEN_AUDIENCES', value, false)),
    ),
  ];

  const adminId = text('BOOTSTRAP_ADMIN_CLIENT_ID');
  const adminSecret = text('BOOTSTRAP_ADMIN_CLIENT_SECRET');
  let bootstrapAdmin: Config['bootstrapAdmin'];
  if ((adminId === undefined) !== (adminSecret === undefined)) {
    problems.push(
      `${adminId === undefined ? 'BOOTSTRAP_ADMIN_CLIENT_ID' : 'BOOTSTRAP_ADMIN_CLIENT_SECRET'} must be set together with ${
        adminId === undefined ? 'BOOTSTRAP_ADMIN_CLIENT_SECRET' : 'BOOTSTRAP_ADMIN_CLIENT_ID'
      }`,
    );
  } else if (adminId !== undefined && adminSecret !== undefined) {
    if (!isUuid(adminId)) problems.push('BOOTSTRAP_ADMIN_CLIENT_ID must be a UUID');
    // The secret is never echoed back, not even in a start-up error.
    if (adminSecret.length < MIN_BOOTSTRAP_SECRET_LENGTH) {
      problems.push(`BOOTSTRAP_ADMIN_CLIENT_SECRET must be at least ${MIN_BOOTSTRAP_SECRET_LENGTH} characters`);
    }
    bootstrapAdmin = { clientId: adminId.toLowerCase(), clientSecret: adminSecret };
  }

  const logLevel = text('LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel as LogLevel)) {
    problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${logLevel}")`);
  }
  const isProduction = text('NODE_ENV') === 'production';
  // The value is key material: a problem names the variable and never repeats what it holds.
  const keyEncryptionKey = (name: string): SecretBytes | undefined => {
    const raw = text(name);
    if (raw === undefined) return undefined;
    const bytes = parseKeyEncryptionKey(raw);
    if (!bytes) {
      problems.push(`${name} must be 32 random bytes in base64, e.g. from \`openssl rand -base64 32\``);
      return undefined;
    }
    return new SecretBytes(bytes);
  };
  const currentKek = keyEncryptionKey('KEY_ENCRYPTION_KEY');
  const previousKek = keyEncryptionKey('KEY_ENCRYPTION_KEY_PREVIOUS');
  if (text('KEY_ENCRYPTION_KEY') === undefined) {
    if (isProduction) {
      problems.push('KEY_ENCRYPTION_KEY is required with NODE_ENV=production: 32 random bytes in base64, e.g. from `openssl rand -base64 32`');
    } else if (previousKek) {
      problems.push('KEY_ENCRYPTION_KEY_PREVIOUS needs KEY_ENCRYPTION_KEY: the new key-encryption key to move signing keys to');
    }
  }
  const workers = integer('WORKERS', isProduction && databaseUrl ? os.availableParallelism() : 1, 1, 256);
  if (workers > 1 && databaseUrl === undefined) {
    problems.push('WORKERS above 1 needs DATABASE_URL: the embedded database belongs to a single process');
  }

  const egressAllowCidrs = [
    ...new Set(
      (text('EGRESS_ALLOW_CIDRS') ?? '')
        .split(',')
        .map((value) => value.trim())
        .filter(Boolean)
        .flatMap((value) => {
          const parsed = parseCidr(value);
          if (!parsed) problems.push(`EGRESS_ALLOW_CIDRS must be comma-separated CIDRs such as 10.0.0.0/8 or fd00::/8 (got "${value}")`);
          return parsed ? [parsed.text] : [];
        }),
    ),
  ];

  const scheduleText = text('WEBHOOK_RETRY_SCHEDULE_SECONDS') ?? '0,5,300,1800,7200,18000,36000,36000';
  const webhookRetryScheduleSeconds = scheduleText.split(',').map((value) => value.trim());
  if (webhookRetryScheduleSeconds.length > 20 || !webhookRetryScheduleSeconds.every((value) => /^\d{1,6}$/.test(value))) {
    problems.push(`WEBHOOK_RETRY_SCHEDULE_SECONDS must be 1 to 20 comma-separated whole numbers of seconds (got "${scheduleText}")`);
  }

  const webhookTimeoutSeconds = integer('WEBHOOK_TIMEOUT_SECONDS', 15, 1, 300);

  if (problems.length > 0) throw new ConfigError(problems);
  return Object.freeze({
    port,
    host,
    databaseUrl,
    databasePoolMode: databasePoolMode as PoolMode,
    databaseConnectTimeoutSeconds,
    dataDir,
    publicUrl,
    tokenTtlSeconds,
    signingAlg: alg as SigningAlg,
    rateLimitPerMinute,
    monthlyTokenLimit,
    auditDigestIntervalSeconds,
    githubOidcIssuer,
    oidcAudience,
    tokenAudiences: Object.freeze(tokenAudiences),
    bootstrapAdmin: bootstrapAdmin && Object.freeze(bootstrapAdmin),
    logLevel: logLevel as LogLevel,
    isProduction,
    keyEncryptionKey: currentKek,
    previousKeyEncryptionKey: previousKek,
    workers,
    egressAllowCidrs: Object.freeze(egressAllowCidrs),
    webhookRetryScheduleSeconds: Object.freeze(webhookRetryScheduleSeconds.map(Number)),
    webhookTimeoutSeconds,
  });
}
