/** parseForm reads any body exactly as URLSearchParams does, fast path or not. */
import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { parseForm } from '../../server/src/http/body.js';
import { SEED } from '../support/fast-check.js';

/** The reference: URLSearchParams, with parseForm's rule that a name must not repeat. */
// Objects list integer-like names first, so compare the pairs by name.
const sorted = (pairs: [string, string][]) => [...pairs].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));

function reference(text: string): [string, string][] | 'repeated' {
  const pairs = [...new URLSearchParams(text)];
  return new Set(pairs.map(([name]) => name)).size < pairs.length ? 'repeated' : sorted(pairs);
}

function actual(text: string): [string, string][] | 'repeated' {
  try {
    return sorted(Object.entries(parseForm(text)));
  } catch (error) {
    if ((error as Error).message.includes('must not be repeated')) return 'repeated';
    throw error;
  }
}

// Bodies built from the characters that matter to the parser, and from anything at all.
const formish = fc.string({ unit: fc.constantFrom('a', 'b', '=', '&', '+', '%', '2', 'B', 'é', ' ', '.', '-'), maxLength: 40 });
const tokenBody = fc
  .array(fc.tuple(fc.stringMatching(/^[a-z_]{0,8}$/), fc.stringMatching(/^[A-Za-z0-9._~-]{0,30}$/)), { maxLength: 4 })
  .map((pairs) => pairs.map(([name, value]) => `${name}=${value}`).join('&'));

describe('parseForm', () => {
  it('agrees with URLSearchParams on every body', () => {
    for (const arbitrary of [formish, tokenBody, fc.string({ unit: 'binary', maxLength: 60 })]) {
      fc.assert(fc.property(arbitrary, (text) => expect(actual(text)).toEqual(reference(text))), { ...SEED, numRuns: 2000 });
    }
  });

  it('takes a plain body literally: names without a value, empty pairs, = inside a value', () => {
    expect(actual('grant_type=client_credentials&&scope&token=a.b.c==')).toEqual([
      ['grant_type', 'client_credentials'],
      ['scope', ''],
      ['token', 'a.b.c=='],
    ]);
    expect(actual('a=1&a=2')).toBe('repeated');
  });
});
