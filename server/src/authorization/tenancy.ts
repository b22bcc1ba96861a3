/**
 * Organizations as an authorization boundary. A caller acts only inside its own
 * organization; a platform caller holding admin:orgs, and the operator (unless confined
 * with `--org`), act in any. Anything of another organization is answered as if it did
 * not exist (404), so that a tenant cannot learn what another one has.
 */
import { NotFound } from '../errors.js';
import type { Caller } from './caller.js';

/** The caller may act in every organization. */
export function isCrossOrganization(caller: Caller): boolean {
  if (caller.kind === 'operator') return caller.orgId === undefined;
  return caller.isPlatform && caller.scopes.includes('admin:orgs');
}

/**
 * The one organization the caller is confined to (undefined when it may act in every one):
 * stores add it to their queries, so that nothing of another organization is even read or
 * locked on such a caller's behalf.
 */
export function confinementOf(caller: Caller): string | undefined {
  return isCrossOrganization(caller) ? undefined : caller.orgId;
}

export function mayActIn(caller: Caller, orgId: string): boolean {
  return isCrossOrganization(caller) || caller.orgId === orgId;
}

/** 404 for what the caller may not see: `what` is the resource's name, e.g. "Agent". */
export function assertVisible<T extends { readonly orgId: string }>(caller: Caller, resource: T | undefined, what: string): T {
  if (!resource || !mayActIn(caller, resource.orgId)) throw new NotFound(what);
  return resource;
}
