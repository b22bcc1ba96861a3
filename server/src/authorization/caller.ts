/**
 * Who is asking: an agent presenting one of our tokens (with that token's scopes, which
 * may be fewer than its agent holds, and its agent's organization), or the operator, who
 * runs the CLI on the database itself and holds every authority, in every organization
 * or (`--org`) in one. The first argument of every service call that reads or changes
 * security state.
 */
import { InsufficientScope } from '../errors.js';
import type { Scope } from './scopes.js';

export type Caller =
  | {
      readonly kind: 'agent';
      readonly agentId: string;
      readonly scopes: readonly string[];
      readonly orgId: string;
      /** The agent belongs to the platform organization, the only one where admin:orgs means anything. */
      readonly isPlatform: boolean;
    }
  | { readonly kind: 'operator'; readonly orgId?: string };

export type AgentCaller = Extract<Caller, { kind: 'agent' }>;

export const OPERATOR_CALLER: Caller = Object.freeze({ kind: 'operator' });

/** The operator confined to one organization (the CLI's `--org`). */
export function operatorIn(orgId: string): Caller {
  return Object.freeze({ kind: 'operator', orgId });
}

export interface CallerOrganization {
  readonly orgId: string;
  readonly isPlatform: boolean;
}

/** admin:orgs counts only in the platform organization: elsewhere it is dropped, whatever a token says. */
export function agentCaller(agentId: string, scopes: readonly string[], org: CallerOrganization): AgentCaller {
  const effective = org.isPlatform ? scopes : scopes.filter((scope) => scope !== 'admin:orgs');
  return Object.freeze({ kind: 'agent', agentId, scopes: Object.freeze([...effective]), orgId: org.orgId, isPlatform: org.isPlatform });
}

/** The audit log's `actor`: `agent:<id>` or `operator`. */
export function actorOf(caller: Caller): string {
  return caller.kind === 'operator' ? 'operator' : `agent:${caller.agentId}`;
}

export function holdsScope(caller: Caller, scope: Scope): boolean {
  return caller.kind === 'operator' || caller.scopes.includes(scope);
}

export function requireScope(caller: Caller, scope: Scope): void {
  if (!holdsScope(caller, scope)) throw new InsufficientScope(scope);
}
