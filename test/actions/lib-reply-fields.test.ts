import { describe, expect, it } from '@jest/globals';
import { UnexpectedResponseError } from '../../actions/lib/errors.js';
import {
  ACCESS_TOKEN,
  AGENT_ID,
  BEARER,
  BOOLEAN,
  DATE_TIME,
  LIFETIME_SECONDS,
  SCOPE,
  readReplyFields,
  type FieldShape,
} from '../../actions/lib/reply-fields.js';

const URL = 'https://idp.example.com/api/v1/oidc/token';
const fieldsOf = (body: unknown, status = 200) => readReplyFields({ url: URL, status, body: JSON.stringify(body) });
const INJECTED = '\n::error::pwned';

describe('reply field shapes', () => {
  it.each<[string, FieldShape<unknown>, unknown, unknown]>([
    ['AGENT_ID', AGENT_ID, '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d', '9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d'],
    ['SCOPE', SCOPE, 'agents:read tokens:read', 'agents:read tokens:read'],
    ['SCOPE', SCOPE, '', ''],
    ['DATE_TIME', DATE_TIME, '2099-01-01T00:00:00.000Z', '2099-01-01T00:00:00.000Z'],
    ['DATE_TIME', DATE_TIME, '2099-01-01T01:00:00+01:00', '2099-01-01T00:00:00.000Z'],
    ['ACCESS_TOKEN', ACCESS_TOKEN, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln-_'],
    ['BEARER', BEARER, 'bearer', 'Bearer'],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, 3600, 3600],
    ['BOOLEAN', BOOLEAN, false, false],
  ])('%s reads %j as %j', (_, shape, value, read) => {
    expect(shape.read(value)).toEqual(read);
  });

  it.each<[string, FieldShape<unknown>, unknown]>([
    ['AGENT_ID', AGENT_ID, `9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d${INJECTED}`],
    ['AGENT_ID', AGENT_ID, 'deploy-bot'],
    ['AGENT_ID', AGENT_ID, 42],
    ['SCOPE', SCOPE, `agents:read${INJECTED}`],
    ['SCOPE', SCOPE, 'agents:read  tokens:read'],
    ['SCOPE', SCOPE, 'agents:read\ttokens:read'],
    ['SCOPE', SCOPE, ' agents:read'],
    ['SCOPE', SCOPE, 'say "hi"'],
    ['SCOPE', SCOPE, ['agents:read']],
    ['DATE_TIME', DATE_TIME, `2099-01-01T00:00:00.000Z${INJECTED}`],
    ['DATE_TIME', DATE_TIME, '2099-01-01'],
    ['DATE_TIME', DATE_TIME, 'Thu, 01 Jan 2099 00:00:00 GMT'],
    ['DATE_TIME', DATE_TIME, '2099-13-45T99:00:00Z'],
    ['DATE_TIME', DATE_TIME, 4070908800],
    ['ACCESS_TOKEN', ACCESS_TOKEN, `eyJ.eyJ.sig${INJECTED}`],
    ['ACCESS_TOKEN', ACCESS_TOKEN, 'opaque-token'],
    ['ACCESS_TOKEN', ACCESS_TOKEN, 'eyJ..sig'],
    ['ACCESS_TOKEN', ACCESS_TOKEN, `eyJ.${'a'.repeat(16_384)}.sig`],
    ['BEARER', BEARER, `Bearer${INJECTED}`],
    ['BEARER', BEARER, 'DPoP'],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, 0],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, -60],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, 1.5],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, '3600'],
    ['LIFETIME_SECONDS', LIFETIME_SECONDS, 2 ** 53],
    ['BOOLEAN', BOOLEAN, 'true'],
  ])('%s refuses %j', (_, shape, value) => {
    expect(shape.read(value)).toBeUndefined();
  });
});

describe('readReplyFields', () => {
  it('hands out a field in its shape', () => {
    const fields = fieldsOf({ token_type: 'bearer', expires_in: 60 });
    expect(fields.required('token_type', BEARER)).toBe('Bearer');
    expect(fields.optional('expires_in', LIFETIME_SECONDS)).toBe(60);
    expect(fields.optional('scope', SCOPE)).toBeUndefined();
  });

  it('names a missing required field', () => {
    expect(() => fieldsOf({}, 201).required('agentId', AGENT_ID)).toThrow(
      new UnexpectedResponseError(URL, 201, 'no agentId in the body'),
    );
  });

  it('names a field that does not fit, required or optional, and never shows its value', () => {
    const fields = fieldsOf({ agentId: `abc${INJECTED}`, scope: `agents:read${INJECTED}`, created: null });
    // toThrow(error) compares the whole message: the reason is all of the reply it holds.
    expect(() => fields.required('agentId', AGENT_ID)).toThrow(new UnexpectedResponseError(URL, 200, 'agentId is not a UUID'));
    expect(() => fields.optional('scope', SCOPE)).toThrow(
      new UnexpectedResponseError(URL, 200, 'scope is not space-separated RFC 6749 scope tokens'),
    );
    expect(() => fields.optional('created', BOOLEAN)).toThrow(new UnexpectedResponseError(URL, 200, 'created is not a boolean'));
  });

  it('reports a body that is not a JSON object', () => {
    expect(() => readReplyFields({ url: URL, status: 200, body: '<html>' })).toThrow(
      new UnexpectedResponseError(URL, 200, 'a body that is not a JSON object'),
    );
  });
});
