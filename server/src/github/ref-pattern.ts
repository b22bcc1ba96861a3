/**
 * A policy's `branch` or `tag`: an exact name, or a glob in which `*` matches within one
 * path segment and `**` across segments (`release/*`, `v*`, `release/**`). Everything else
 * matches itself exactly: no case folding, no prefixes, no other metacharacters
 * (CONTRACT.md, "Trust policies (GitHub)").
 */

/** The ref a policy constraint applies to: `refs/heads/<branch>` or `refs/tags/<tag>`. */
export const BRANCH_REFS = 'refs/heads/';
export const TAG_REFS = 'refs/tags/';

export function isRefGlob(pattern: string): boolean {
  return pattern.includes('*');
}

/** Whether `name` (a branch or tag name, without its `refs/…/` prefix) matches `pattern`. */
export function matchesRefPattern(pattern: string, name: string): boolean {
  if (!isRefGlob(pattern)) return pattern === name;
  return matchesGlob(tokensOf(pattern), [...name]);
}

type GlobToken = { readonly kind: 'star' | 'globstar' } | { readonly kind: 'char'; readonly char: string };

/** `**` crosses segments, `*` stays within one; every other character is itself (by code point). */
function tokensOf(pattern: string): GlobToken[] {
  return pattern.split(/(\*\*|\*)/).flatMap((part): GlobToken[] =>
    part === '**' ? [{ kind: 'globstar' }] : part === '*' ? [{ kind: 'star' }] : [...part].map((char) => ({ kind: 'char', char })),
  );
}

/**
 * Whether `name` matches, by dynamic programming over (token, character): time in
 * proportion to their product whatever the pattern, where a backtracking regular expression
 * would take exponential time on a pattern such as `*a*a*a*a*b` (a binding's glob is a
 * tenant's text, and the claim a workload's).
 */
function matchesGlob(tokens: readonly GlobToken[], name: readonly string[]): boolean {
  // matched[j]: the tokens so far match the first j characters of the name.
  let matched = new Array<boolean>(name.length + 1).fill(false);
  matched[0] = true;
  for (const token of tokens) {
    const next = new Array<boolean>(name.length + 1).fill(false);
    if (token.kind === 'char') {
      for (let j = 1; j <= name.length; j += 1) next[j] = matched[j - 1] && name[j - 1] === token.char;
    } else {
      // A star takes any run of characters (no '/' for a single star) after a matched prefix.
      let isOpen = false;
      for (let j = 0; j <= name.length; j += 1) {
        if (j > 0 && token.kind === 'star' && name[j - 1] === '/') isOpen = false;
        isOpen = isOpen || matched[j];
        next[j] = isOpen;
      }
    }
    matched = next;
  }
  return matched[name.length];
}
