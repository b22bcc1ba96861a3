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
  return compile(pattern).test(name);
}

// Policies are few and read on every exchange: a compiled pattern is kept, within bounds.
const compiled = new Map<string, RegExp>();
const MAX_COMPILED = 1024;

function compile(pattern: string): RegExp {
  let regex = compiled.get(pattern);
  if (regex === undefined) {
    const source = pattern
      .split(/(\*\*|\*)/)
      .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part.replace(/[.+?^${}()|[\]\\/]/g, '\\$&')))
      .join('');
    // `s`: `.` crosses every character, line breaks included (a ref cannot hold one, but a
    // pattern must never be looser or stricter than it reads).
    regex = new RegExp(`^${source}$`, 'su');
    if (compiled.size >= MAX_COMPILED) compiled.clear();
    compiled.set(pattern, regex);
  }
  return regex;
}
