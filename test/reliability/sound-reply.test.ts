/**
 * The hostile-input oracle's own check that nothing internal leaks in an error body: it must
 * fire on internals in any message of the body, yet pass the messages the server really sends,
 * including those that quote a name the client sent.
 */
import { describe, expect, it } from '@jest/globals';
import type { RawReply, RawRequest } from '../support/raw-http.js';
import { checkSoundReply } from '../support/sound-reply.js';

const request: RawRequest = { method: 'POST', target: '/api/v1/agents' };
const tokenRequest: RawRequest = { method: 'POST', target: '/api/v1/token' };

function errorReply(status: number, body: Record<string, unknown>): RawReply {
  const text = JSON.stringify(body);
  return {
    status,
    headers: { 'x-request-id': ['req-1'], 'content-type': ['application/json; charset=utf-8'] },
    body: Buffer.from(text),
    text,
    json: body,
  };
}

describe('the oracle: nothing internal in an error body', () => {
  it.each([
    ['an exception, a file path and SQL in a message', request, { code: 'VALIDATION_ERROR', message: 'TypeError at /work/x.ts: select * from agents' }],
    ['a stack frame', request, { code: 'VALIDATION_ERROR', message: 'Bad input\n    at parse (file:///app/build/server.js:10:3)' }],
    ['a database error in an OAuth description', tokenRequest, { error: 'invalid_request', error_description: 'duplicate key value violates unique constraint "agents_pkey"' }],
    ['a library name', tokenRequest, { error: 'invalid_client', error_description: 'knex: Timeout acquiring a connection.' }],
    ['internals deep in details', request, { code: 'VALIDATION_ERROR', message: 'The request is invalid.', details: { issues: [{ path: 'name', message: 'Cannot read properties of undefined' }] } }],
  ])('fires on %s', (_, sent, body) => {
    expect(() => checkSoundReply(sent, errorReply(400, body))).toThrow(/in an error body/);
  });

  it.each([
    ['a quoted parameter name', request, { code: 'VALIDATION_ERROR', message: "The 'select' parameter must not be repeated." }],
    ['a quoted unknown key', request, { code: 'VALIDATION_ERROR', message: 'The request is invalid: Unrecognized keys: "pg", "TypeError", "x.ts".', details: { issues: [{ path: '', message: 'Unrecognized keys: "pg", "TypeError", "x.ts"' }] } }],
    ['an apostrophe next to a quoted scope', request, { code: 'VALIDATION_ERROR', message: "The agent's scopes do not include 'agents:write'." }],
    ['a plain refusal', tokenRequest, { error: 'invalid_client', error_description: 'Client authentication failed.' }],
  ])('passes %s', (_, sent, body) => {
    expect(() => checkSoundReply(sent, errorReply(400, body))).not.toThrow();
  });

  it('does not take an apostrophe for a quote that would hide what follows it', () => {
    const body = { code: 'VALIDATION_ERROR', message: "The agent's request failed: TypeError at /work/x.ts, it's gone" };
    expect(() => checkSoundReply(request, errorReply(400, body))).toThrow(/in an error body/);
  });
});
