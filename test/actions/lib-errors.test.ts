import { describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { SEED } from '../support/fast-check.js';
import { toSafeLine } from '../../actions/lib/errors.js';

describe('toSafeLine', () => {
  it.each([
    ['keeps an ordinary sentence', 'Trust policy violation', 'Trust policy violation'],
    ['joins lines', 'Bad client\n::error::pwned', 'Bad client ::error::pwned'],
    ['turns line breaks of every kind into spaces', 'a\r\nb\u2028c\u2029d\u0085e\vf', 'a b c d e f'],
    ['drops ANSI escapes, BEL and NUL', '\u001b[31mred\u001b[0m and a bell\u0007 and a NUL\u0000', '[31mred[0m and a bell and a NUL'],
    ['drops bidi overrides', 'right-to-left \u202eevil\u202c override', 'right-to-left evil override'],
    ['drops the colons a workflow command starts with', '::error::pwned', 'error::pwned'],
    ['drops them after leading line breaks and spaces', '\n  ::add-mask::x', 'add-mask::x'],
    ['drops them when split by spaces or control characters', ': :\u0000: :warning::x', 'warning::x'],
    ['leaves nothing of blanks', '   ', ''],
  ])('%s', (_, text, line) => {
    expect(toSafeLine(text)).toBe(line);
  });

  it('bounds the length, in characters, marking the cut', () => {
    expect(toSafeLine('x'.repeat(5000))).toBe(`${'x'.repeat(300)}…`);
    expect(toSafeLine('😀'.repeat(10), 4)).toBe('😀😀😀😀…');
  });

  it('never yields a line break, a control character or a workflow command, whatever the text', () => {
    const hostile = fc.string({
      unit: fc.oneof(
        fc.constantFrom('\n', '\r', '\u2028', '\u0085', '\u001b', '\u0000', '\u202e', ':', ' ', '\t'),
        fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }),
      ),
      maxLength: 400,
    });
    fc.assert(
      fc.property(hostile, fc.integer({ min: 1, max: 300 }), (text, maxChars) => {
        const line = toSafeLine(text, maxChars);
        expect(line).not.toMatch(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u);
        expect(line).not.toMatch(/^\s*:/);
        expect(Array.from(line).length).toBeLessThanOrEqual(maxChars + 1);
      }),
      { ...SEED, numRuns: 200 },
    );
  });
});
