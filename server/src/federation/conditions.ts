/**
 * A condition on a claim of a partner's token: `{claim, op, value}`, `eq` (equal),
 * `in` (one of) or `glob` (`*` within a `/`-separated segment, `**` across, as trust
 * policies' branches). The claim is a top-level name, or a JSON Pointer (RFC 6901) for a
 * nested one (`/kubernetes.io/namespace`). Only string claims satisfy a condition (a
 * number, a boolean or an array never does), so nothing is coerced. Pure.
 */
import { matchesRefPattern } from '../github/ref-pattern.js';

export type ConditionOp = 'eq' | 'in' | 'glob';

export interface Condition {
  readonly claim: string;
  readonly op: ConditionOp;
  readonly value: string | readonly string[];
}

/** The value of `claim` in `claims`: a top-level name, or a JSON Pointer. */
export function claimValue(claims: Record<string, unknown>, claim: string): unknown {
  if (!claim.startsWith('/')) return Object.hasOwn(claims, claim) ? claims[claim] : undefined;
  let node: unknown = claims;
  for (const token of claim.slice(1).split('/')) {
    const key = token.replace(/~1/g, '/').replace(/~0/g, '~');
    if (node === null || typeof node !== 'object' || Array.isArray(node) || !Object.hasOwn(node, key)) return undefined;
    node = (node as Record<string, unknown>)[key];
  }
  return node;
}

export function holds(condition: Condition, claims: Record<string, unknown>): boolean {
  const actual = claimValue(claims, condition.claim);
  if (typeof actual !== 'string') return false;
  switch (condition.op) {
    case 'eq':
      return actual === condition.value;
    case 'in':
      return (condition.value as readonly string[]).includes(actual);
    case 'glob':
      return matchesRefPattern(condition.value as string, actual);
  }
}

export interface ConditionResult {
  readonly condition: Condition;
  readonly isMet: boolean;
  /** What the token carries (for an explanation to whoever manages the binding; never in a grant's answer). */
  readonly actual: unknown;
}

export function evaluateConditions(conditions: readonly Condition[], claims: Record<string, unknown>): ConditionResult[] {
  return conditions.map((condition) => ({ condition, isMet: holds(condition, claims), actual: claimValue(claims, condition.claim) }));
}

export const allHold = (conditions: readonly Condition[], claims: Record<string, unknown>): boolean =>
  conditions.every((condition) => holds(condition, claims));
