import { describe, expect, it } from '@jest/globals';
import {
  InputError,
  InputProblems,
  checkApiUrl,
  checkBoolean,
  checkRequired,
  checkScopes,
  checkUuid,
} from '../../actions/lib/inputs.js';

function check<T>(fn: (problems: InputProblems) => T): { value: T; error?: InputError } {
  const problems = new InputProblems();
  const value = fn(problems);
  try {
    problems.throwIfAny();
    return { value };
  } catch (error) {
    return { value, error: error as InputError };
  }
}

describe('checkApiUrl', () => {
  it.each([
    ['https://idp.example.com', 'https://idp.example.com'],
    ['https://idp.example.com/', 'https://idp.example.com'],
    ['http://127.0.0.1:3000//', 'http://127.0.0.1:3000'],
    ['https://example.com/idp/', 'https://example.com/idp'],
  ])('accepts %s as base URL %s', (input, expected) => {
    expect(check((p) => checkApiUrl('api-url', input, p))).toEqual({ value: expected });
  });

  it.each([
    ['idp.example.com', 'must be an http(s) URL, got "idp.example.com"'],
    ['ftp://idp.example.com', 'must be an http(s) URL, got "ftp://idp.example.com"'],
    ['javascript:alert(1)', 'must be an http(s) URL, got "javascript:alert(1)"'],
    ['https://idp.example.com/api/v1', 'must be the IdP base URL without /api/v1, got "https://idp.example.com/api/v1"'],
    ['https://idp.example.com?x=1', 'must be a plain base URL with no query, fragment or credentials'],
    ['https://user:pw@idp.example.com', 'must be a plain base URL with no query, fragment or credentials'],
  ])('refuses %s', (input, problem) => {
    const { value, error } = check((p) => checkApiUrl('api-url', input, p));
    expect(value).toBeUndefined();
    expect(error?.message).toContain(`\`api-url\` ${problem}`);
  });

  it.each([
    ['http://127.0.0.1:3000', 'http://127.0.0.1:3000'],
    ['http://127.1.2.3', 'http://127.1.2.3'],
    ['http://127.1:8080/', 'http://127.0.0.1:8080'],
    ['http://localhost:3000', 'http://localhost:3000'],
    ['http://LOCALHOST', 'http://localhost'],
    ['http://localhost.:3000', 'http://localhost.:3000'],
    ['http://[::1]:3000', 'http://[::1]:3000'],
    ['http://[0:0:0:0:0:0:0:1]/', 'http://[::1]'],
    ['https://10.0.0.5', 'https://10.0.0.5'],
  ])('accepts plain http only on loopback, and https anywhere: %s', (input, expected) => {
    expect(check((p) => checkApiUrl('api-url', input, p))).toEqual({ value: expected });
  });

  it.each([
    'http://example.com',
    'http://idp.example.com:3000/',
    'http://10.0.0.5:3000',
    'http://192.168.1.10',
    'http://0.0.0.0:3000',
    'http://128.0.0.1',
    'http://localhost.example.com',
    'http://foo.localhost',
    'http://127.0.0.1.nip.io',
    'http://[::ffff:127.0.0.1]',
    'http://[::2]',
  ])('refuses plain http to %s, which is not loopback by name or address', (input) => {
    const { value, error } = check((p) => checkApiUrl('api-url', input, p));
    expect(value).toBeUndefined();
    expect(error?.problems).toEqual([
      '`api-url` must use https: plain http, which sends the GitHub ID token in clear, is accepted only for ' +
        `loopback (localhost, 127.0.0.0/8, [::1]), got ${JSON.stringify(input)}`,
    ]);
  });

  it('names a missing api-url as required', () => {
    expect(check((p) => checkApiUrl('api-url', '', p)).error?.problems).toEqual([
      '`api-url` is required (the IdP base URL, e.g. https://idp.example.com)',
    ]);
  });
});

describe('checkUuid', () => {
  it('accepts a UUID in any case and returns it lower-cased', () => {
    expect(check((p) => checkUuid('agent-id', '3FA85F64-5717-4562-B3FC-2C963F66AFA6', p))).toEqual({
      value: '3fa85f64-5717-4562-b3fc-2c963f66afa6',
    });
  });

  it.each(['abc', '3fa85f64-5717-4562-b3fc-2c963f66afa', '3fa85f64571745 62b3fc2c963f66afa6', '{3fa85f64-5717-4562-b3fc-2c963f66afa6}'])(
    'refuses %s',
    (input) => {
      expect(check((p) => checkUuid('agent-id', input, p)).error?.problems).toEqual([
        `\`agent-id\` must be the agent's UUID, got ${JSON.stringify(input)}`,
      ]);
    },
  );

  it('shortens a long value it echoes', () => {
    const problem = check((p) => checkUuid('agent-id', 'x'.repeat(500), p)).error?.problems[0] ?? '';
    expect(problem).toBe(`\`agent-id\` must be the agent's UUID, got "${'x'.repeat(80)}…"`);
  });
});

describe('checkScopes', () => {
  it('splits on spaces, commas and newlines and drops duplicates', () => {
    expect(check((p) => checkScopes('scopes', 'agents:read, tokens:read\nagents:read  audit:read', p))).toEqual({
      value: ['agents:read', 'tokens:read', 'audit:read'],
    });
  });

  it('reads an empty input as no scopes given', () => {
    expect(check((p) => checkScopes('scopes', ' , ', p))).toEqual({ value: undefined });
  });

  it('refuses characters RFC 6749 does not allow in a scope', () => {
    expect(check((p) => checkScopes('scope', 'agents:read "quoted" back\\slash', p)).error?.problems).toEqual([
      '`scope` has invalid scope names: "\\"quoted\\"", "back\\\\slash"',
    ]);
  });
});

describe('checkBoolean and checkRequired', () => {
  it.each([
    ['', true],
    ['true', true],
    ['True', true],
    ['FALSE', false],
    ['false', false],
  ])('reads %j as %s', (input, expected) => {
    expect(check((p) => checkBoolean('revoke', input, true, p))).toEqual({ value: expected });
  });

  it('refuses anything but true or false', () => {
    expect(check((p) => checkBoolean('revoke', 'yes', true, p)).error?.problems).toEqual([
      '`revoke` must be true or false, got "yes"',
    ]);
  });

  it('collects every problem into one message', () => {
    const { error } = check((p) => {
      checkRequired('name', '', p);
      checkApiUrl('api-url', 'nope', p);
    });
    expect(error?.message).toBe('Invalid action inputs: `name` is required; `api-url` must be an http(s) URL, got "nope".');
  });
});
