import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import {
  IdTokenUnavailableError,
  IdpRefusalError,
  IdpUnreachableError,
  UnexpectedResponseError,
} from '../../actions/lib/errors.js';
import { createIdpClient, postWithIdToken, postWithRetries, readJsonObject } from '../../actions/lib/idp-client.js';
import { DEFAULT_RETRY_POLICY, type RetryPolicy } from '../../actions/lib/retry.js';
import type { IncomingReply, OutgoingRequest } from '../../actions/lib/transport.js';

type Step = IncomingReply | { error: Error & { code?: string }; takesMs?: number };

/** A client over a scripted transport and a fake clock: sleeps advance time instead of waiting. */
function scriptedClient(steps: Step[], policy: RetryPolicy = DEFAULT_RETRY_POLICY) {
  let nowMs = 0;
  const sent: OutgoingRequest[] = [];
  const sleeps: number[] = [];
  const log: string[] = [];
  const client = createIdpClient({
    apiUrl: 'https://idp.example.com',
    policy,
    log: (message) => log.push(message),
    now: () => nowMs,
    sleep: async (ms) => {
      sleeps.push(ms);
      nowMs += ms;
    },
    random: () => 0.5,
    transport: async (request) => {
      sent.push(request);
      const step = steps[Math.min(sent.length - 1, steps.length - 1)];
      if ('error' in step) {
        nowMs += step.takesMs ?? 10;
        throw step.error;
      }
      nowMs += 10;
      return step;
    },
  });
  return { client, sent, sleeps, log, elapsedMs: () => nowMs };
}

const ok = (body: unknown = { ok: true }, status = 200): IncomingReply => ({ status, headers: {}, body: JSON.stringify(body) });
const failing = (status: number, body: unknown = {}, headers: Record<string, string> = {}): IncomingReply => ({
  status,
  headers,
  body: JSON.stringify(body),
});
const networkError = (code: string) => ({ error: Object.assign(new Error(`connect ${code}`), { code }) });
const json = async () => ({ contentType: 'application/json', body: '{}' });

describe('postWithRetries', () => {
  it('returns the first 2xx answer without retrying', async () => {
    const { client, sent, sleeps } = scriptedClient([ok({ a: 1 }, 201)]);
    const answer = await postWithRetries(client, '/api/v1/x', json);
    expect(answer).toEqual({ url: 'https://idp.example.com/api/v1/x', status: 201, body: '{"a":1}' });
    expect(sent).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('sends the prepared body with its content type, Accept and extra headers', async () => {
    const { client, sent } = scriptedClient([ok()]);
    await postWithRetries(client, '/p', async () => ({
      contentType: 'application/x-www-form-urlencoded',
      body: 'token=t',
      headers: { Authorization: 'Bearer t' },
    }));
    expect(sent[0]).toEqual({
      url: 'https://idp.example.com/p',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json', Authorization: 'Bearer t' },
      body: 'token=t',
      timeoutMs: DEFAULT_RETRY_POLICY.attemptTimeoutMs,
    });
  });

  it.each([408, 429, 500, 502, 503, 504])('retries HTTP %i and returns the later success', async (status) => {
    const { client, sent, log } = scriptedClient([failing(status), failing(status), ok()]);
    await expect(postWithRetries(client, '/p', json)).resolves.toMatchObject({ status: 200 });
    expect(sent).toHaveLength(3);
    expect(log[0]).toMatch(new RegExp(`^Attempt 1 to reach https://idp.example.com/p failed \\(HTTP ${status}\\); retrying in 0.8 s\\.$`));
  });

  it.each(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'ETIMEDOUT'])('retries the network error %s', async (code) => {
    const { client, sent } = scriptedClient([networkError(code), ok()]);
    await expect(postWithRetries(client, '/p', json)).resolves.toMatchObject({ status: 200 });
    expect(sent).toHaveLength(2);
  });

  it('retries an attempt that timed out', async () => {
    const { client, sent, log } = scriptedClient([{ error: new Error('Request timeout: /p') }, ok()]);
    await postWithRetries(client, '/p', json);
    expect(sent).toHaveLength(2);
    expect(log[0]).toContain('(no answer within 30.0 s)');
  });

  it.each([400, 401, 403, 404, 405, 409, 410, 422])('never retries HTTP %i', async (status) => {
    const { client, sent, sleeps } = scriptedClient([
      failing(status, { error: 'access_denied', error_description: 'Trust policy violation' }),
      ok(),
    ]);
    const refusal = await postWithRetries(client, '/p', json).catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(IdpRefusalError);
    expect(refusal).toMatchObject({ status, errorCode: 'access_denied', description: 'Trust policy violation' });
    expect(sent).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });

  it('reads the API error envelope {code, message} too', async () => {
    const { client } = scriptedClient([failing(409, { code: 'CONFLICT', message: 'Name taken' })]);
    await expect(postWithRetries(client, '/p', json)).rejects.toMatchObject({ errorCode: 'CONFLICT', description: 'Name taken' });
  });

  it('keeps the code, description and Location of a refusal only as safe lines', async () => {
    const { client } = scriptedClient([
      failing(
        302,
        { error: '::error::code\r\n', error_description: `Moved\n::add-mask::x \u001b[2J${'y'.repeat(400)}` },
        { location: '::warning::\u0007https://elsewhere.example.com/' },
      ),
    ]);
    await expect(postWithRetries(client, '/p', json)).rejects.toMatchObject({
      errorCode: 'error::code',
      description: `Moved ::add-mask::x [2J${'y'.repeat(300 - 'Moved ::add-mask::x [2J'.length)}…`,
      location: 'warning::https://elsewhere.example.com/',
    });
  });

  it("logs a retried failure's description as a safe line", async () => {
    const { client, log } = scriptedClient([failing(503, { code: 'SERVICE_UNAVAILABLE', message: '\n::error::pwned\u001b[0m' }), ok()]);
    await postWithRetries(client, '/p', json);
    expect(log[0]).toBe('Attempt 1 to reach https://idp.example.com/p failed (HTTP 503 SERVICE_UNAVAILABLE: error::pwned[0m); retrying in 0.8 s.');
  });

  it('does not follow a redirect, and reports where it pointed', async () => {
    const { client, sent } = scriptedClient([failing(301, {}, { location: 'https://elsewhere.example.com/p' })]);
    await expect(postWithRetries(client, '/p', json)).rejects.toMatchObject({
      status: 301,
      location: 'https://elsewhere.example.com/p',
    });
    expect(sent).toHaveLength(1);
  });

  it('honours Retry-After on a 429', async () => {
    const { client, sleeps } = scriptedClient([failing(429, {}, { 'retry-after': '7' }), ok()]);
    await postWithRetries(client, '/p', json);
    expect(sleeps).toEqual([7000]);
  });

  it('caps a long Retry-After, and gives up when it would outlast the budget', async () => {
    const policy = { ...DEFAULT_RETRY_POLICY, maxElapsedMs: 100_000 };
    const { client, sleeps } = scriptedClient([failing(429, {}, { 'retry-after': '3600' })], policy);
    const error = await postWithRetries(client, '/p', json).catch((e: unknown) => e);
    expect(sleeps.every((ms) => ms === DEFAULT_RETRY_POLICY.maxRetryAfterMs)).toBe(true);
    expect(sleeps).toHaveLength(3);
    expect(error).toMatchObject({ attempts: 4, lastReason: 'HTTP 429' });
  });

  it('gives up once the next wait would exceed the time budget, naming the last failure', async () => {
    const { client, sent, sleeps, elapsedMs } = scriptedClient([
      failing(503, { code: 'SERVICE_UNAVAILABLE', message: 'Database unreachable' }),
    ]);
    const error = await postWithRetries(client, '/p', json).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdpUnreachableError);
    expect(error).toMatchObject({
      url: 'https://idp.example.com',
      attempts: sent.length,
      lastReason: 'HTTP 503 SERVICE_UNAVAILABLE: Database unreachable',
    });
    // random() = 0.5: three quarters of each doubling step, capped at 10 s
    expect(sleeps).toEqual([750, 1500, 3000, 6000, 7500, 7500, 7500, 7500, 7500, 7500]);
    expect(sent).toHaveLength(11);
    expect(elapsedMs()).toBeLessThan(DEFAULT_RETRY_POLICY.maxElapsedMs);
  });

  it('never runs past its budget, whatever fails and however long attempts take', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.constantFrom(408, 429, 500, 503).map((status) => ({ status })),
            fc.integer({ min: 1, max: 60_000 }).map((hangMs) => ({ hangMs })),
          ),
          { minLength: 1, maxLength: 40 },
        ),
        fc.integer({ min: 1_000, max: 120_000 }),
        async (failures, maxElapsedMs) => {
          const policy = { ...DEFAULT_RETRY_POLICY, maxElapsedMs, attemptTimeoutMs: Math.min(maxElapsedMs, 30_000) };
          let nowMs = 0;
          let attempt = 0;
          const client = createIdpClient({
            apiUrl: 'https://idp.example.com',
            policy,
            now: () => nowMs,
            sleep: async (ms) => void (nowMs += ms),
            transport: async (request) => {
              const failure = failures[Math.min(attempt++, failures.length - 1)];
              if ('status' in failure) return failing(failure.status);
              // a slow or hung server: the attempt lasts until its answer or its timeout
              nowMs += Math.min(failure.hangMs, request.timeoutMs);
              throw new Error('Request timeout: /p');
            },
          });
          await expect(postWithRetries(client, '/p', json)).rejects.toBeInstanceOf(IdpUnreachableError);
          expect(nowMs).toBeLessThanOrEqual(maxElapsedMs);
        },
      ),
      SEED,
    );
  });
});

describe('postWithIdToken', () => {
  it('fetches a fresh ID token for every attempt', async () => {
    const { client, sent } = scriptedClient([failing(503), networkError('ECONNRESET'), ok()]);
    let issued = 0;
    await postWithIdToken(client, '/api/v1/oidc/token', async () => `id-token-${++issued}`, (token) => ({ token, agentId: 'a' }));
    expect(sent.map((request) => JSON.parse(request.body))).toEqual([
      { token: 'id-token-1', agentId: 'a' },
      { token: 'id-token-2', agentId: 'a' },
      { token: 'id-token-3', agentId: 'a' },
    ]);
  });

  it('stops without a request when no ID token can be obtained', async () => {
    const { client, sent } = scriptedClient([ok()]);
    const error = await postWithIdToken(
      client,
      '/p',
      async () => {
        throw new Error('Error message: Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable');
      },
      (token) => ({ token }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IdTokenUnavailableError);
    expect(error).toMatchObject({ reason: 'Unable to get ACTIONS_ID_TOKEN_REQUEST_URL env variable' });
    expect(sent).toEqual([]);
  });
});

describe('readJsonObject', () => {
  it.each(['', 'not json', '[1]', 'null', '"s"'])('reports %j as an unexpected response', (body) => {
    expect(() => readJsonObject({ url: 'https://idp.example.com/p', status: 200, body })).toThrow(
      new UnexpectedResponseError('https://idp.example.com/p', 200, 'a body that is not a JSON object'),
    );
  });
});
