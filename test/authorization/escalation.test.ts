/** The no-escalation rule on its own (authorization/escalation.ts): pure, so every case is a row. */
import { describe, expect, it } from '@jest/globals';
import { agentCaller, OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { assertMayDelegate, assertMayManage } from '../../server/src/authorization/escalation.js';
import { Forbidden } from '../../server/src/errors.js';

const SELF = '00000000-0000-4000-8000-000000000001';
const OTHER = '00000000-0000-4000-8000-000000000002';
const PLATFORM = { orgId: '00000000-0000-4000-8000-0000000000f0', isPlatform: true };
const caller = agentCaller(SELF, ['agents:read', 'agents:write', 'tokens:read'], PLATFORM);

describe('assertMayManage', () => {
  it.each([
    ['an agent holding only scopes the caller carries', { agentId: OTHER, scopes: ['agents:read'] }, undefined],
    ['an agent holding exactly the caller’s scopes', { agentId: OTHER, scopes: ['agents:read', 'agents:write', 'tokens:read'] }, undefined],
    ['giving an agent scopes the caller carries', { agentId: OTHER, scopes: [] }, ['tokens:read', 'agents:read']],
    ['taking scopes away from an agent within the caller’s', { agentId: OTHER, scopes: ['tokens:read'] }, []],
    ['setting its own scopes to what they are', { agentId: SELF, scopes: ['agents:read'] }, ['agents:read']],
  ])('allows %s', (_, agent, after) => {
    expect(() => assertMayManage(caller, agent, after)).not.toThrow();
  });

  it.each([
    ['an agent holding a scope the caller lacks', { agentId: OTHER, scopes: ['audit:read'] }, undefined, 'The agent holds scopes your token does not carry'],
    ['taking away a scope the caller lacks', { agentId: OTHER, scopes: ['audit:read', 'agents:read'] }, ['agents:read'], 'The agent holds scopes your token does not carry'],
    ['giving a scope the caller lacks', { agentId: OTHER, scopes: ['agents:read'] }, ['agents:read', 'admin:orgs'], 'You cannot give an agent a scope your token does not carry'],
    ['a new agent with a scope the caller lacks', { agentId: OTHER, scopes: [] }, ['webhooks:write'], 'You cannot give an agent a scope your token does not carry'],
    ['changing its own scopes, even downwards', { agentId: SELF, scopes: ['agents:read', 'tokens:read'] }, ['agents:read'], 'An agent cannot change its own scopes'],
  ])('refuses %s with FORBIDDEN naming the rule, not the scopes', (_, agent, after, rule) => {
    let refusal: unknown;
    try {
      assertMayManage(caller, agent, after);
    } catch (error) {
      refusal = error;
    }
    expect(refusal).toBeInstanceOf(Forbidden);
    expect(refusal).toMatchObject({ status: 403, code: 'FORBIDDEN' });
    expect((refusal as Error).message).toContain(rule);
    expect((refusal as Error).message).not.toMatch(/audit:read|admin:orgs|webhooks:write/);
  });

  it('lets the operator do anything', () => {
    expect(() => assertMayManage(OPERATOR_CALLER, { agentId: OTHER, scopes: ['admin:orgs'] }, ['audit:read', 'webhooks:write'])).not.toThrow();
  });

  it('judges by the token’s scopes, not by what its agent may hold', () => {
    const narrowed = agentCaller(SELF, ['agents:write'], PLATFORM);
    expect(() => assertMayManage(narrowed, { agentId: OTHER, scopes: ['agents:read'] })).toThrow(Forbidden);
  });
});

describe('assertMayDelegate', () => {
  it('allows a policy within the caller’s scopes and refuses one beyond them', () => {
    expect(() => assertMayDelegate(caller, ['agents:read', 'tokens:read'])).not.toThrow();
    expect(() => assertMayDelegate(caller, [])).not.toThrow();
    expect(() => assertMayDelegate(caller, ['agents:read', 'audit:read'])).toThrow('A policy cannot allow a scope your token does not carry.');
    expect(() => assertMayDelegate(OPERATOR_CALLER, ['admin:orgs'])).not.toThrow();
  });
});
