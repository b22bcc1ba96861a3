/**
 * Which organization a list or a creation is about: the one the caller names (`orgId`),
 * if it may act there, else its own; the operator's default is the platform organization.
 * An organization the caller may not act in is answered 404, exactly like one that does
 * not exist.
 */
import type { Knex } from 'knex';
import type { Caller } from '../authorization/caller.js';
import { mayActIn } from '../authorization/tenancy.js';
import { Conflict, Forbidden, NotFound, ValidationFailed } from '../errors.js';
import type { Organization } from './organization.js';
import { countLiveAgents, findOrganization, platformOrgId } from './organization-store.js';

export async function organizationIdFor(db: Knex | Knex.Transaction, caller: Caller, requested?: string): Promise<string> {
  if (requested !== undefined) {
    if (!mayActIn(caller, requested)) throw new NotFound('Organization');
    return requested;
  }
  return caller.orgId ?? platformOrgId(db);
}

/** The organization itself; `forUpdate` locks it for the transaction (e.g. to count its agents exactly). */
export async function organizationFor(db: Knex | Knex.Transaction, caller: Caller, requested?: string, forUpdate = false): Promise<Organization> {
  const orgId = await organizationIdFor(db, caller, requested);
  const org = await findOrganization(db, orgId, forUpdate);
  if (!org) throw new NotFound('Organization');
  return org;
}

/** New things (agents, policies, credentials) are made only in an active organization. */
export function assertAcceptsChanges(org: Organization): void {
  if (org.status !== 'active') throw new Conflict(`The organization is ${org.status}.`);
}

/** admin:orgs is held only in the platform organization. */
export function assertScopesAllowedIn(org: Organization, scopes: readonly string[] | null | undefined, field = 'scopes'): void {
  if (!org.isPlatform && scopes?.includes('admin:orgs')) {
    throw new ValidationFailed('admin:orgs can be held only by agents of the platform organization.', {}, { field });
  }
}

/**
 * A new agent in `org` (locked by the caller's transaction, so that concurrent creations
 * count each other): the organization is active, the scopes allowed there, and maxAgents
 * not reached.
 */
export async function assertMayAddAgent(trx: Knex.Transaction, org: Organization, scopes: readonly string[]): Promise<void> {
  assertAcceptsChanges(org);
  assertScopesAllowedIn(org, scopes);
  const { maxAgents } = org.limits;
  if (maxAgents !== null && (await countLiveAgents(trx, org.orgId)) >= maxAgents) {
    throw new Forbidden(`The organization's limit of ${maxAgents.toLocaleString('en-US')} agents has been reached.`);
  }
}
