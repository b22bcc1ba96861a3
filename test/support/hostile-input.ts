/**
 * Hostile input for the property-based tests: fast-check arbitraries for values, text,
 * bodies, tokens, headers and timestamps. Each leans on the inputs that have broken
 * servers like this one: NUL and lone surrogates (PostgreSQL text cannot hold the first
 * and mangles the second), form-encoding tricks, JSON nesting, sizes around the body
 * limit, timestamps at the edges of what PostgreSQL stores.
 */
import fc from 'fast-check';
import { KNOWN_SCOPES } from '../../server/src/authorization/scopes.js';

/** What the arbitraries may point at: real ids and tokens, so that requests get past lookups. */
export interface World {
  readonly adminToken: string;
  /** An agent holding agents:read and tokens:read, its credential and a trust policy for it. */
  readonly agentId: string;
  readonly agentSecret: string;
  readonly credentialId: string;
  readonly agentToken: string;
  readonly policyId: string;
  /** Tokens of the agent that bodies may name (revoking them harms nothing else). */
  readonly spareTokens: readonly string[];
}

/** Marks a field left out of a body. */
export const ABSENT = Symbol('absent');

const b64url = (value: string | Uint8Array) => Buffer.from(value).toString('base64url');

/** encodeURIComponent that takes any string (a lone surrogate is sent as U+FFFD instead of throwing). */
export function percentEncode(text: string): string {
  let encoded = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const char = String.fromCharCode(byte);
    encoded += /[A-Za-z0-9\-_.!~*'()]/.test(char) ? char : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

export const CURIOUS_STRINGS = [
  "' or '1'='1",
  "'; drop table agents; --",
  '" or ""="',
  "admin'--",
  '1) or sleep(5)#',
  '\\',
  '%27%20or%201=1',
  '%00',
  '%',
  '%zz',
  '+',
  '__proto__',
  'constructor',
  'prototype',
  '${7*7}',
  '{{7*7}}',
  '<script>alert(1)</script>',
  '../../../../etc/passwd',
  '..%2f..%2f',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\uffff',
  '\u202e\u0041',
  '\u00a0',
  '😀',
  '𝕏𝕐',
  'Ω≈ç√',
  '\r\n',
  '\t',
  ' ',
  '',
  '0',
  '-1',
  '1e309',
  'authorization_code',
  'NaN',
  'null',
  'true',
  '[]',
  '{}',
  '00000000-0000-0000-0000-000000000000',
  'ffffffff-ffff-ffff-ffff-ffffffffffff',
  'x'.repeat(300),
  '\u0000'.repeat(100),
];

export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...CURIOUS_STRINGS) },
  { weight: 3, arbitrary: fc.string({ unit: 'binary', maxLength: 40 }) },
  { weight: 2, arbitrary: fc.string({ unit: 'grapheme', maxLength: 200 }) },
  { weight: 1, arbitrary: fc.uuid().map((uuid) => uuid.toUpperCase()) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 20_000 }).map((length) => 'é'.repeat(length)) },
);

export const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 4, arbitrary: hostileString },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' }) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 2, 2 ** 31, -(2 ** 31) - 1) },
  { weight: 1, arbitrary: fc.array(hostileString, { maxLength: 5 }) },
);

/** A valid value most of the time (so that the other fields of a body get through), else a hostile one, or none at all. */
export const field = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<T | unknown> =>
  fc.oneof({ weight: 8, arbitrary: valid }, { weight: 1, arbitrary: hostileValue }, { weight: 1, arbitrary: fc.constant(ABSENT) });

/** Characters that text columns, JSON and logs each treat differently; NUL is the one PostgreSQL text cannot hold. */
export const surprise = fc.oneof(
  { weight: 3, arbitrary: fc.constant('\u0000') },
  { weight: 3, arbitrary: fc.constantFrom('\ud800', '\udc00', '\u202e', '\u0007', '\u001b[31m', '\r\n', '\u00ff', '😀', '\uffff', '\ufeff', '\\u0000', '%00') },
);

/** Text a schema may accept: plain, with one surprising character inside, or any code points. */
export const text = (maxLength = 40): fc.Arbitrary<string> =>
  fc.oneof(
    fc.string({ minLength: 1, maxLength }),
    fc.tuple(fc.string({ maxLength: maxLength >> 1 }), surprise, fc.string({ maxLength: maxLength >> 1 })).map(([before, odd, after]) => before + odd + after),
    fc.string({ unit: 'binary', minLength: 1, maxLength }),
  );

export const scopeList = fc.subarray([...KNOWN_SCOPES]);
export const scopeString = fc.oneof(
  scopeList.map((scopes) => scopes.join(' ')),
  fc.constantFrom('agents:read  agents:read', ' agents:read', 'agents:read,tokens:read', 'admin:all', 'AGENTS:READ', 'agents:read\tagents:write'),
);

/** RFC 3339 timestamps, mostly at the edges of what JavaScript and PostgreSQL can hold: year 0000, 9999, offsets up to ±23:59. */
export const isoDateTime: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(fc.constantFrom(0, 1, 1969, 1970, 2038, 9999), fc.integer({ min: 0, max: 9999 })),
    fc.integer({ min: 1, max: 12 }),
    fc.integer({ min: 1, max: 31 }),
    fc.constantFrom('00:00:00', '23:59:59', '23:59:60', '12:00:00.123456789'),
    fc.constantFrom('Z', 'z', '+00:00', '+14:00', '-12:00', '+23:59', '-23:59', '+15:59'),
  )
  .map(([year, month, day, time, zone]) => `${String(year).padStart(4, '0')}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}T${time}${zone}`);

/** A JWT-shaped string that is not one of ours: garbage parts, alg none, unknown kid, bad signature. */
export const forgedJwt: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      fc.record({ alg: fc.constantFrom('RS256', 'none', 'HS256', 'ES256', 'EdDSA', 'rs256'), kid: fc.oneof(fc.string({ unit: 'binary' }), fc.uuid()), typ: fc.constant('JWT') }, { requiredKeys: [] }),
      fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }),
    ),
    fc.oneof(fc.jsonValue({ maxDepth: 2, stringUnit: 'binary' }), fc.record({ iss: fc.constantFrom('http://idp.test'), sub: fc.uuid(), jti: fc.uuid(), exp: fc.integer() })),
    fc.uint8Array({ maxLength: 300 }),
  )
  .map(([header, payload, signature]) => `${b64url(JSON.stringify(header) ?? 'x')}.${b64url(JSON.stringify(payload) ?? 'x')}.${b64url(signature)}`);

/** Tokens that are ours, but altered: a flipped signature byte, alg none, a swapped payload. */
export function tamperedTokens(token: string): string[] {
  const [header, payload, signature] = token.split('.');
  const flipped = signature.slice(0, 10) + (signature[10] === 'A' ? 'B' : 'A') + signature.slice(11);
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  return [
    `${header}.${payload}.${flipped}`,
    `${b64url(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${payload}.`,
    `${header}.${b64url(JSON.stringify({ ...claims, scope: KNOWN_SCOPES.join(' ') }))}.${signature}`,
    `${header}.${payload}`,
    `${token}.${signature}`,
    token.toLowerCase(),
  ];
}

export const anyToken = (world: World) => fc.oneof(fc.constantFrom(...world.spareTokens, ...world.spareTokens.flatMap(tamperedTokens)), forgedJwt, hostileString);

/** Header values Node lets through to the application: printable latin1 and tabs (raw bytes are the raw-bytes property's). */
export const headerText = (maxLength = 120) =>
  fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).filter((code) => code !== 0x7f).map((code) => String.fromCharCode(code)), maxLength });

/** Every kind of Authorization header, none, or several (repeated headers). */
export function authorizationHeaders(world: World): fc.Arbitrary<[string, string][]> {
  const basic = fc.oneof(
    fc.tuple(fc.constantFrom(world.agentId, world.agentId.toUpperCase(), '00000000-0000-4000-8000-00000000a0a0'), fc.oneof(hostileString, fc.constant(world.agentSecret))).map(
      ([id, secret]) => `Basic ${Buffer.from(`${percentEncode(id)}:${percentEncode(secret)}`).toString('base64')}`,
    ),
    fc.uint8Array({ maxLength: 200 }).map((bytes) => `Basic ${Buffer.from(bytes).toString('base64')}`),
    hostileString.map((text) => `Basic ${Buffer.from(text).toString('base64')}`),
    headerText(80).map((text) => `Basic ${text}`),
    fc.constantFrom('Basic', 'Basic ', 'Basic =', 'Basic Og==', 'basic Og==', 'Basic  Og==  ', 'Basic !!!'),
  );
  const bearer = fc.oneof(
    anyToken(world).map((token) => `Bearer ${token}`),
    fc.constantFrom(world.adminToken, world.agentToken).map((token) => `bearer  ${token} `),
    fc.constantFrom('Bearer', 'Bearer ', 'Bearer a b', 'Bearer =', 'Token abc', 'Digest x', 'Negotiate YII='),
    headerText(80).map((text) => `Bearer ${text}`),
  );
  const one = fc.oneof(
    { weight: 2, arbitrary: fc.constantFrom(`Bearer ${world.adminToken}`, `Bearer ${world.agentToken}`) },
    { weight: 3, arbitrary: bearer },
    { weight: 3, arbitrary: basic },
    { weight: 1, arbitrary: fc.tuple(basic, bearer).map(([a, b]) => `${a}, ${b}`) },
    { weight: 1, arbitrary: headerText(100) },
  );
  return fc.array(one, { maxLength: 2 }).map((values) => values.map((value) => ['Authorization', value] as [string, string]));
}

export const contentTypes = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('application/json', 'application/x-www-form-urlencoded') },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      'APPLICATION/JSON',
      'application/json; charset=utf-8',
      'application/json;charset="UTF-8"',
      'application/json; charset=latin1',
      'application/json; charset=utf-16le',
      'application/json; charset',
      'application/json; charset=utf-8; charset=utf-16',
      'application/x-www-form-urlencoded; charset=ISO-8859-1',
      'application/x-www-form-urlencoded;charset=utf8',
      'application/jsonx',
      'application/json, application/x-www-form-urlencoded',
      'text/plain',
      'text/html; charset=utf-8',
      'multipart/form-data; boundary=xyz',
      'application/merge-patch+json',
      '*/*',
      ';',
      '',
    ),
  },
  { weight: 1, arbitrary: headerText(60) },
);


export const extraHeaders: fc.Arbitrary<[string, string][]> = fc.oneof(
  { weight: 3, arbitrary: fc.constant<[string, string][]>([]) },
  {
    weight: 1,
    arbitrary: fc.array(
      fc.oneof(
        fc.tuple(
          fc.constantFrom('X-Request-Id', 'Content-Encoding', 'Accept', 'Accept-Charset', 'Accept-Encoding', 'Cookie', 'X-Forwarded-For', 'X-Forwarded-Proto', 'Origin', 'Range', 'If-None-Match', 'X-HTTP-Method-Override'),
          fc.oneof(headerText(), fc.constantFrom('gzip', 'identity', 'br, gzip', 'deflate', 'DELETE', '../../', 'x'.repeat(64), 'x'.repeat(65))),
        ),
        fc.constantFrom<[string, string]>(['Expect', '100-continue'], ['Expect', 'something-else'], ['Transfer-Encoding', 'gzip']),
      ),
      { minLength: 1, maxLength: 3 },
    ),
  },
);

/** Form bodies with the tricks of form encoding: repeats, stray `%`, `+`, empty names, NUL. */
export const formGarbage = fc
  .array(
    fc.oneof(
      fc.tuple(hostileString, hostileString).map(([name, value]) => `${percentEncode(name)}=${percentEncode(value)}`),
      fc.constantFrom('%', '%zz', '%00', '%ff%fe', '%c0%af', '+', '=', '==', '&', 'a', 'a=', '=a', 'grant_type=client_credentials', 'token=', 'a=1&a=2', '\u0000=\u0000'),
    ),
    { maxLength: 8 },
  )
  .map((parts) => parts.join('&'));

/** A body of any kind, bytes, JSON, nesting or size. */
export const anyBody: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 3, arbitrary: fc.jsonValue({ maxDepth: 5, stringUnit: 'binary' }).map((value) => JSON.stringify(value) ?? '') },
  { weight: 2, arbitrary: formGarbage },
  { weight: 2, arbitrary: fc.uint8Array({ maxLength: 2_048 }).map((bytes) => Buffer.from(bytes)) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.integer({ min: 100, max: 30_000 }), fc.constantFrom(['[', ']'], ['{"a":', '}'], ['{"name":[', ']}']))
      .map(([depth, [open, close]]) => open.repeat(depth) + '1' + close.repeat(depth)),
  },
  { weight: 1, arbitrary: fc.integer({ min: 60_000, max: 70_000 }).map((length) => JSON.stringify({ name: 'n', description: 'd'.repeat(length) })) },
  { weight: 1, arbitrary: fc.constantFrom('', '{', '{"name":', '{"a":1}{"b":2}', '\ufeff{"name":"x"}', '{"name":"x",}', "{'name':'x'}", 'null', '"x"', '1e999', '[]') },
);

/** Turns fields (ABSENT left out) into a JSON or form body; form values that are not text become JSON text. */
export function encodeFields(fields: Record<string, unknown>, as: 'json' | 'form', repeat?: string): string {
  const present = Object.entries(fields).filter(([, value]) => value !== ABSENT);
  if (as === 'json') return JSON.stringify(Object.fromEntries(present));
  const form = new URLSearchParams(present.map(([name, value]): [string, string] => [name, typeof value === 'string' ? value : JSON.stringify(value) ?? '']));
  if (repeat !== undefined) form.append(repeat, 'again');
  return form.toString();
}
