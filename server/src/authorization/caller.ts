/**
 * Who is asking: an agent presenting one of our tokens (with that token's scopes, which
 * may be fewer than its agent holds), or the operator, who runs the CLI on the database
 * itself and holds every authority. The first argument of every service call that reads
 * or changes security state.
 */
import { InsufficientScope } from '../errors.js';
import type { Scope } from './scopes.js';

export type Caller =
  | { readonly kind: 'agent'; readonly agentId: string; readonly scopes: readonly string[] }
  | { readonly kind: 'operator' };

export type AgentCaller = Extract<Caller, { kind: 'agent' }>;

export const OPERATOR_CALLER: Caller = Object.freeze({ kind: 'operator' });

export function agentCaller(agentId: string, scopes: readonly string[]): AgentCaller {
  return Object.freeze({ kind: 'agent', agentId, scopes: Object.freeze([...scopes]) });
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
