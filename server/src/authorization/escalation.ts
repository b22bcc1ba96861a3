/**
 * Never grant what you do not hold (Kubernetes RBAC's escalation check). A caller may change
 * an agent, or anything that belongs to it, only if every scope the agent holds and every
 * scope it would hold afterwards is among the caller's own token scopes; whatever a policy
 * lets a workflow obtain must be among them too; and no caller changes its own agent's
 * scopes. The operator (the CLI on the database) holds everything. Refusals name the rule,
 * never the scopes another agent holds.
 */
import { Forbidden } from '../errors.js';
import type { Caller } from './caller.js';

const isWithin = (caller: Caller, scopes: readonly string[]) =>
  caller.kind === 'operator' || scopes.every((scope) => caller.scopes.includes(scope));

const isSameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((scope) => b.includes(scope));

export interface ManagedAgent {
  readonly agentId: string;
  /** What the agent holds now (none for an agent being created). */
  readonly scopes: readonly string[];
}

/** Any change to `agent` or to what belongs to it; `scopesAfter` when the change sets its scopes. */
export function assertMayManage(caller: Caller, agent: ManagedAgent, scopesAfter?: readonly string[]): void {
  const isScopeChange = scopesAfter !== undefined && !isSameSet(agent.scopes, scopesAfter);
  if (isScopeChange && caller.kind === 'agent' && caller.agentId === agent.agentId) {
    throw new Forbidden('An agent cannot change its own scopes.');
  }
  if (!isWithin(caller, agent.scopes)) {
    throw new Forbidden('The agent holds scopes your token does not carry; only a caller holding all of them can change it.');
  }
  if (scopesAfter !== undefined && !isWithin(caller, scopesAfter)) {
    throw new Forbidden('You cannot give an agent a scope your token does not carry.');
  }
}

/** What a trust or registration policy lets a workflow obtain. */
export function assertMayDelegate(caller: Caller, scopes: readonly string[]): void {
  if (!isWithin(caller, scopes)) throw new Forbidden('A policy cannot allow a scope your token does not carry.');
}

/** Suspending or decommissioning an organization changes every agent in it: the caller must hold all their scopes. */
export function assertMayManageAll(caller: Caller, scopesHeld: readonly string[]): void {
  if (!isWithin(caller, scopesHeld)) {
    throw new Forbidden("The organization's agents hold scopes your token does not carry; only a caller holding all of them can suspend, reactivate or decommission it.");
  }
}
