import { InvalidScope, quotable } from '../errors.js';
import { isKnownScope, parseScopeParameter } from '../authorization/scopes.js';

/**
 * The scopes a grant carries: all the client holds when `requested` is absent or empty,
 * else exactly the requested ones if it holds them all. Returns the first scope it may
 * not have (a string) otherwise.
 */
export function grantableScopes(requested: string | undefined, held: readonly string[]): string[] | string {
  if (requested === undefined || requested.trim() === '') return [...held];
  const scopes = parseScopeParameter(requested);
  const refused = scopes.find((scope) => !isKnownScope(scope) || !held.includes(scope));
  return refused ?? scopes;
}

/** RFC 6749 §5.2 invalid_scope, naming the refused scope when it is quotable (a client may send a secret there). */
export function scopeNotAvailable(scope: string): InvalidScope {
  const shown = quotable(scope);
  return new InvalidScope(shown ? `Requested scope '${shown}' is not available.` : 'A requested scope is not available.');
}
