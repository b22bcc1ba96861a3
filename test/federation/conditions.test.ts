/** Conditions on a partner's claims (federation/conditions.ts): pure, so every case is a row. */
import { describe, expect, it } from '@jest/globals';
import { claimValue, holds, type Condition } from '../../server/src/federation/conditions.js';
import { matchesRefPattern } from '../../server/src/github/ref-pattern.js';

const claims = {
  sub: 'system:serviceaccount:payments:worker',
  ref: 'refs/heads/release/v1',
  project_id: '7',
  numeric: 7,
  list: ['a', 'b'],
  'kubernetes.io': { namespace: 'payments', 'a/b': 'slash', 'c~d': 'tilde' },
};

describe('conditions', () => {
  it.each<[Condition, boolean]>([
    [{ claim: 'project_id', op: 'eq', value: '7' }, true],
    [{ claim: 'project_id', op: 'eq', value: '8' }, false],
    [{ claim: 'numeric', op: 'eq', value: '7' }, false], // only strings satisfy a condition
    [{ claim: 'list', op: 'in', value: ['a'] }, false],
    [{ claim: 'project_id', op: 'in', value: ['6', '7'] }, true],
    [{ claim: 'ref', op: 'glob', value: 'refs/heads/release/*' }, true],
    [{ claim: 'ref', op: 'glob', value: 'refs/heads/*' }, false], // * stays within a segment
    [{ claim: 'ref', op: 'glob', value: 'refs/heads/**' }, true],
    [{ claim: '/kubernetes.io/namespace', op: 'eq', value: 'payments' }, true],
    [{ claim: '/kubernetes.io/a~1b', op: 'eq', value: 'slash' }, true],
    [{ claim: '/kubernetes.io/c~0d', op: 'eq', value: 'tilde' }, true],
    [{ claim: '/kubernetes.io', op: 'eq', value: '[object Object]' }, false],
    [{ claim: 'missing', op: 'eq', value: '' }, false],
    [{ claim: '/constructor/name', op: 'eq', value: 'Object' }, false], // own properties only
  ])('%j holds: %s', (condition, expected) => {
    expect(holds(condition, claims)).toBe(expected);
  });

  it('reads nothing through a JSON Pointer that leaves the claims', () => {
    expect(claimValue(claims, '/list/0')).toBeUndefined();
    expect(claimValue(claims, '/__proto__')).toBeUndefined();
  });
});

describe('globs take time in proportion to pattern and name, whatever the pattern', () => {
  it('answers a pattern that would make a backtracking regex run for minutes at once', () => {
    const started = Date.now();
    expect(matchesRefPattern('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5_000))).toBe(false);
    expect(matchesRefPattern('**a**a**a**a**a**a**b', `${'a/'.repeat(2_000)}c`)).toBe(false);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it.each([
    ['v*', 'v1.2.0', true],
    ['release/*', 'release/v1', true],
    ['release/*', 'release/v1/hotfix', false],
    ['release/**', 'release/v1/hotfix', true],
    ['**/main', 'a/b/main', true],
    ['*', '', true],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'ab/c', false],
    ['a**c', 'ab/c', true],
    ['*.yml', 'deploy.yml', true],
  ])('%s against %s: %s', (pattern, name, expected) => {
    expect(matchesRefPattern(pattern, name)).toBe(expected);
  });
});
