/** The scopes this server knows: seed 002's four plus seed 001's three. */
export const KNOWN_SCOPES = [
  'agents:read',
  'agents:write',
  'tokens:read',
  'audit:read',
  'webhooks:read',
  'webhooks:write',
  'admin:orgs',
] as const;
export type Scope = (typeof KNOWN_SCOPES)[number];

export function isKnownScope(value: string): value is Scope {
  return (KNOWN_SCOPES as readonly string[]).includes(value);
}

/** RFC 6749 §3.3: scope is a space-delimited list; order does not matter, duplicates collapse. */
export function parseScopeParameter(value: string): string[] {
  return [...new Set(value.split(' ').filter((item) => item !== ''))];
}

export function formatScope(scopes: readonly string[]): string {
  return scopes.join(' ');
}

export function hasScope(scope: string, required: Scope): boolean {
  return scope.split(' ').includes(required);
}
