import crypto from 'node:crypto';
import os from 'node:os';
import util from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { ConfigError, loadConfig } from '../server/src/config.js';

const KEK = crypto.randomBytes(32).toString('base64');

const problemsOf = (env: Record<string, string>) => {
  try {
    loadConfig(env);
  } catch (error) {
    return (error as ConfigError).problems;
  }
  return [];
};

describe('loadConfig', () => {
  it('applies the contract defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 3000,
      host: '127.0.0.1',
      databaseUrl: undefined,
      publicUrl: 'http://localhost:3000',
      tokenTtlSeconds: 3600,
      signingAlg: 'RS256',
      rateLimitPerMinute: 100,
      monthlyTokenLimit: 10000,
      githubOidcIssuer: 'https://token.actions.githubusercontent.com',
      oidcAudience: 'http://localhost:3000',
      bootstrapAdmin: undefined,
      logLevel: 'info',
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('derives PUBLIC_URL from PORT and OIDC_AUDIENCE from PUBLIC_URL', () => {
    expect(loadConfig({ PORT: '8080' }).oidcAudience).toBe('http://localhost:8080');
    expect(loadConfig({ PUBLIC_URL: 'https://idp.example.com/' }).oidcAudience).toBe('https://idp.example.com');
  });

  it('reads TOKEN_AUDIENCES as comma-separated URLs (none by default), naming a bad one', () => {
    expect(loadConfig({}).tokenAudiences).toEqual([]);
    expect(loadConfig({ TOKEN_AUDIENCES: 'https://api.example.com/, https://b.example.com,https://api.example.com' }).tokenAudiences).toEqual([
      'https://api.example.com',
      'https://b.example.com',
    ]);
    expect(() => loadConfig({ TOKEN_AUDIENCES: 'https://ok.example.com,api.example.com' })).toThrow(
      'TOKEN_AUDIENCES must be an absolute http(s) URL (got "api.example.com")',
    );
  });

  it('reads EGRESS_ALLOW_CIDRS as comma-separated CIDRs (none by default), naming a bad one', () => {
    expect(loadConfig({}).egressAllowCidrs).toEqual([]);
    expect(loadConfig({ EGRESS_ALLOW_CIDRS: ' 10.1.0.0/16, fd00::/8,127.0.0.1 ,10.1.2.3/16' }).egressAllowCidrs).toEqual(['10.1.0.0/16', 'fd00::/8', '127.0.0.1/32']);
    expect(Object.isFrozen(loadConfig({}).egressAllowCidrs)).toBe(true);
    for (const bad of ['10.0.0.0/33', 'gitlab.internal', '10.0.0.0/8;fd00::/8']) {
      expect(problemsOf({ EGRESS_ALLOW_CIDRS: `127.0.0.0/8,${bad}` })).toEqual([
        `EGRESS_ALLOW_CIDRS must be comma-separated CIDRs such as 10.0.0.0/8 or fd00::/8 (got "${bad}")`,
      ]);
    }
  });

  it('collects every problem, naming each variable', () => {
    const problems = problemsOf({ PORT: '-1', SIGNING_ALG: 'none', RATE_LIMIT_PER_MINUTE: '1.5', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' });
    expect(problems.map((problem) => problem.split(' ')[0])).toEqual(['PORT', 'DATABASE_URL', 'SIGNING_ALG', 'RATE_LIMIT_PER_MINUTE', 'LOG_LEVEL']);
  });

  it('accepts http for the GitHub issuer only on loopback hosts', () => {
    expect(problemsOf({ GITHUB_OIDC_ISSUER: 'http://127.0.0.1:9999' })).toEqual([]);
    expect(problemsOf({ GITHUB_OIDC_ISSUER: 'http://token.actions.githubusercontent.com' })[0]).toMatch(/^GITHUB_OIDC_ISSUER/);
  });

  it('requires both bootstrap variables, a UUID id, and never echoes the secret', () => {
    expect(problemsOf({ BOOTSTRAP_ADMIN_CLIENT_ID: '00000000-0000-4000-8000-000000000001' })[0]).toMatch(/BOOTSTRAP_ADMIN_CLIENT_SECRET/);
    const problems = problemsOf({ BOOTSTRAP_ADMIN_CLIENT_ID: 'admin', BOOTSTRAP_ADMIN_CLIENT_SECRET: 'short-secret' });
    expect(problems).toEqual(['BOOTSTRAP_ADMIN_CLIENT_ID must be a UUID', 'BOOTSTRAP_ADMIN_CLIENT_SECRET must be at least 32 characters']);
    expect(problems.join(' ')).not.toContain('short-secret');
  });

  it('requires a bootstrap secret of at least 32 characters: it guards every scope', () => {
    const id = '00000000-0000-4000-8000-000000000001';
    const secret31 = 'sk_live_0123456789abcdefghijklm';
    expect(secret31).toHaveLength(31);
    const problems = problemsOf({ BOOTSTRAP_ADMIN_CLIENT_ID: id, BOOTSTRAP_ADMIN_CLIENT_SECRET: secret31 });
    expect(problems).toEqual(['BOOTSTRAP_ADMIN_CLIENT_SECRET must be at least 32 characters']);
    expect(() => loadConfig({ BOOTSTRAP_ADMIN_CLIENT_ID: id, BOOTSTRAP_ADMIN_CLIENT_SECRET: secret31 })).toThrow(
      'Invalid configuration: BOOTSTRAP_ADMIN_CLIENT_SECRET must be at least 32 characters',
    );
    // Surrounding blanks do not count towards the length.
    expect(problemsOf({ BOOTSTRAP_ADMIN_CLIENT_ID: id, BOOTSTRAP_ADMIN_CLIENT_SECRET: ` ${secret31} ` })).toEqual(problems);
    expect(loadConfig({ BOOTSTRAP_ADMIN_CLIENT_ID: id, BOOTSTRAP_ADMIN_CLIENT_SECRET: `${secret31}n` }).bootstrapAdmin).toEqual({
      clientId: id,
      clientSecret: `${secret31}n`,
    });
  });

  it('says whether NODE_ENV is production', () => {
    expect(loadConfig({}).isProduction).toBe(false);
    expect(loadConfig({ NODE_ENV: 'development' }).isProduction).toBe(false);
    expect(loadConfig({ NODE_ENV: 'production', KEY_ENCRYPTION_KEY: KEK }).isProduction).toBe(true);
  });

  it('runs one worker by default, one per core in production on PostgreSQL, and never several on the embedded database', () => {
    const postgres = { DATABASE_URL: 'postgres://idp@db.internal/idp' };
    const production = { NODE_ENV: 'production', KEY_ENCRYPTION_KEY: KEK };
    expect(loadConfig({}).workers).toBe(1);
    expect(loadConfig(postgres).workers).toBe(1);
    expect(loadConfig({ ...postgres, ...production }).workers).toBe(os.availableParallelism());
    expect(loadConfig(production).workers).toBe(1);
    expect(loadConfig({ ...postgres, ...production, WORKERS: '3' }).workers).toBe(3);
    expect(problemsOf({ WORKERS: '2' })).toEqual(['WORKERS above 1 needs DATABASE_URL: the embedded database belongs to a single process']);
    expect(problemsOf({ ...postgres, WORKERS: '0' })[0]).toMatch(/^WORKERS must be a whole number from 1 to 256/);
  });

  it('uses session pooling by default and takes transaction pooling, refusing anything else in one line naming DATABASE_POOL_MODE', () => {
    const postgres = { DATABASE_URL: 'postgres://idp@pgbouncer.internal:6432/idp' };
    expect(loadConfig(postgres).databasePoolMode).toBe('session');
    expect(loadConfig({ ...postgres, DATABASE_POOL_MODE: 'session' }).databasePoolMode).toBe('session');
    expect(loadConfig({ ...postgres, DATABASE_POOL_MODE: ' transaction ' }).databasePoolMode).toBe('transaction');
    expect(problemsOf({ ...postgres, DATABASE_POOL_MODE: 'statement' })).toEqual(['DATABASE_POOL_MODE must be one of session, transaction (got "statement")']);
    expect(() => loadConfig({ DATABASE_POOL_MODE: 'Transaction' })).toThrow(
      new ConfigError(['DATABASE_POOL_MODE must be one of session, transaction (got "Transaction")']),
    );
  });

  it('retries an unreachable database for 60 s at start by default, 0 meaning one attempt, and names a bad DATABASE_CONNECT_TIMEOUT_SECONDS', () => {
    expect(loadConfig({}).databaseConnectTimeoutSeconds).toBe(60);
    expect(loadConfig({ DATABASE_CONNECT_TIMEOUT_SECONDS: '0' }).databaseConnectTimeoutSeconds).toBe(0);
    expect(loadConfig({ DATABASE_CONNECT_TIMEOUT_SECONDS: '300' }).databaseConnectTimeoutSeconds).toBe(300);
    for (const bad of ['-1', '1.5', 'soon', '86401']) {
      expect(problemsOf({ DATABASE_CONNECT_TIMEOUT_SECONDS: bad })).toEqual([`DATABASE_CONNECT_TIMEOUT_SECONDS must be a whole number from 0 to 86400 (got "${bad}")`]);
    }
  });

  it('refuses to start in production without a key-encryption key, naming the variable', () => {
    const problems = problemsOf({ NODE_ENV: 'production', DATABASE_URL: 'postgres://idp@db.internal/idp' });
    expect(problems).toEqual(['KEY_ENCRYPTION_KEY is required with NODE_ENV=production: 32 random bytes in base64, e.g. from `openssl rand -base64 32`']);
    // Embedded too: a key generated beside the database it protects is no key for production.
    expect(problemsOf({ NODE_ENV: 'production' })).toEqual(problems);
  });

  it('takes a key-encryption key of exactly 32 bytes in base64, and never echoes a bad one', () => {
    const bytes = crypto.randomBytes(32);
    for (const encoded of [bytes.toString('base64'), bytes.toString('base64url'), bytes.toString('base64').replace(/=$/, '')]) {
      expect(loadConfig({ KEY_ENCRYPTION_KEY: encoded }).keyEncryptionKey?.reveal()).toEqual(bytes);
    }
    for (const bad of [crypto.randomBytes(16).toString('base64'), crypto.randomBytes(33).toString('base64'), 'not base64 at all, but long enough to pass!!', bytes.toString('hex')]) {
      const problems = problemsOf({ KEY_ENCRYPTION_KEY: bad, KEY_ENCRYPTION_KEY_PREVIOUS: bad });
      expect(problems).toEqual([
        'KEY_ENCRYPTION_KEY must be 32 random bytes in base64, e.g. from `openssl rand -base64 32`',
        'KEY_ENCRYPTION_KEY_PREVIOUS must be 32 random bytes in base64, e.g. from `openssl rand -base64 32`',
      ]);
      expect(problems.join(' ')).not.toContain(bad);
    }
    expect(problemsOf({ KEY_ENCRYPTION_KEY_PREVIOUS: KEK })).toEqual([
      'KEY_ENCRYPTION_KEY_PREVIOUS needs KEY_ENCRYPTION_KEY: the new key-encryption key to move signing keys to',
    ]);
  });

  it('keeps key-encryption keys out of JSON, strings and inspection', () => {
    const config = loadConfig({ KEY_ENCRYPTION_KEY: KEK, KEY_ENCRYPTION_KEY_PREVIOUS: KEK });
    const hex = Buffer.from(KEK, 'base64').toString('hex');
    for (const shown of [JSON.stringify(config), util.inspect(config, { depth: 5 }), `${config.keyEncryptionKey}`]) {
      expect(shown).not.toContain(KEK);
      expect(shown).not.toContain(hex.slice(0, 16));
      expect(shown).not.toContain(hex.slice(0, 8).replace(/(..)(?!$)/g, '$1 ')); // a Buffer's inspection
    }
  });
});
