import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import {
  DEFAULT_RETRY_POLICY,
  computeBackoffMs,
  computeRetryDelayMs,
  isRetryableStatus,
  parseRetryAfterMs,
  readRetryPolicy,
} from '../../actions/lib/retry.js';

describe('isRetryableStatus', () => {
  it.each([408, 429, 500, 502, 503, 504, 599])('retries HTTP %i', (status) => {
    expect(isRetryableStatus(status)).toBe(true);
  });

  it.each([300, 301, 400, 401, 403, 404, 405, 409, 410, 413, 415, 422])('never retries HTTP %i', (status) => {
    expect(isRetryableStatus(status)).toBe(false);
  });
});

describe('computeBackoffMs', () => {
  it('draws each wait from the upper half of a doubling step capped at maxDelayMs', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 60 }), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), (attempt, r) => {
        const stepMs = Math.min(DEFAULT_RETRY_POLICY.maxDelayMs, DEFAULT_RETRY_POLICY.baseDelayMs * 2 ** (attempt - 1));
        const waitMs = computeBackoffMs(attempt, DEFAULT_RETRY_POLICY, () => r);
        expect(waitMs).toBeGreaterThanOrEqual(Math.floor(stepMs / 2));
        expect(waitMs).toBeLessThanOrEqual(stepMs);
      }),
      SEED,
    );
  });

  it('doubles from the base delay', () => {
    const upper = [1, 2, 3, 4, 5, 6].map((attempt) => computeBackoffMs(attempt, DEFAULT_RETRY_POLICY, () => 0.999999));
    expect(upper).toEqual([1000, 2000, 4000, 8000, 10000, 10000]);
  });
});

describe('parseRetryAfterMs', () => {
  const nowMs = Date.parse('2026-01-01T00:00:00Z');

  it('reads delay-seconds', () => {
    expect(parseRetryAfterMs('7', nowMs)).toBe(7000);
  });

  it('reads an HTTP-date relative to now', () => {
    expect(parseRetryAfterMs('Thu, 01 Jan 2026 00:00:12 GMT', nowMs)).toBe(12000);
  });

  it('reads a date in the past as no wait', () => {
    expect(parseRetryAfterMs('Wed, 31 Dec 2025 23:00:00 GMT', nowMs)).toBe(0);
  });

  it.each([undefined, '', 'soon', '-5', '1.5'])('ignores %j', (header) => {
    expect(parseRetryAfterMs(header, nowMs)).toBeUndefined();
  });
});

describe('computeRetryDelayMs', () => {
  it('waits for Retry-After when it is longer than the backoff', () => {
    expect(computeRetryDelayMs(1, 5000, DEFAULT_RETRY_POLICY, () => 0)).toBe(5000);
  });

  it('caps Retry-After at maxRetryAfterMs', () => {
    expect(computeRetryDelayMs(1, 3_600_000, DEFAULT_RETRY_POLICY, () => 0)).toBe(DEFAULT_RETRY_POLICY.maxRetryAfterMs);
  });

  it('keeps the backoff when Retry-After is shorter', () => {
    expect(computeRetryDelayMs(4, 0, DEFAULT_RETRY_POLICY, () => 0.999999)).toBe(8000);
  });
});

describe('readRetryPolicy', () => {
  it('defaults to a 60 s budget starting at 1 s waits', () => {
    expect(readRetryPolicy({})).toEqual(DEFAULT_RETRY_POLICY);
  });

  it('takes the budget and base delay from the test knobs', () => {
    expect(readRetryPolicy({ SENTRYAGENT_RETRY_MAX_MS: '2000', SENTRYAGENT_RETRY_BASE_MS: '20' })).toEqual({
      ...DEFAULT_RETRY_POLICY,
      maxElapsedMs: 2000,
      baseDelayMs: 20,
      attemptTimeoutMs: 2000,
    });
  });

  it('ignores knobs that are not positive integers', () => {
    expect(readRetryPolicy({ SENTRYAGENT_RETRY_MAX_MS: '0', SENTRYAGENT_RETRY_BASE_MS: '1e3' })).toEqual(DEFAULT_RETRY_POLICY);
  });

  it('takes a caller default budget when no knob is set', () => {
    expect(readRetryPolicy({}, 15_000).maxElapsedMs).toBe(15_000);
  });
});
