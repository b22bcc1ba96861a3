/**
 * No sequence of API calls lets a caller obtain, or hand out, a scope its token lacks. Each
 * case gives a caller random scopes (always agents:write, so that it can try), a second
 * agent with random scopes beside the bootstrap admin, and a random sequence of writes:
 * create agents, set scopes (its own included), mint credentials, create trust and
 * registration policies, for any of them. Whatever those writes yielded is then checked:
 * a token from any credential it minted, any policy it created and any agent it created or
 * changed carry only scopes the caller holds, and the agents it could not manage are unchanged.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import { KNOWN_SCOPES } from '../../server/src/authorization/scopes.js';
import { adminToken, bearer, createAgent, form, getToken, json, send } from '../support/api.js';
import { SEED } from '../support/fast-check.js';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

const scopes = fc.subarray([...KNOWN_SCOPES]);
/** A target: 0 the bootstrap admin, 1 the other agent, 2 the caller itself, 3+ agents the caller created. */
const target = fc.nat(5);
const write = fc.oneof(
  fc.record({ kind: fc.constant('create' as const), scopes }),
  fc.record({ kind: fc.constant('setScopes' as const), target, scopes }),
  fc.record({ kind: fc.constant('credential' as const), target }),
  fc.record({ kind: fc.constant('trustPolicy' as const), target, scopes: fc.option(scopes, { nil: undefined }) }),
  fc.record({ kind: fc.constant('registrationPolicy' as const), scopes }),
);
const scenario = fc.record({
  callerScopes: scopes.map((held) => [...new Set(['agents:write', ...held])]),
  otherScopes: scopes,
  writes: fc.array(write, { minLength: 1, maxLength: 6 }),
});

const within = (held: readonly string[], given: readonly string[]) => given.every((scope) => held.includes(scope));
const scopesOf = async (agentId: string): Promise<string[]> => (await send(server, `/api/v1/agents/${agentId}`, bearer(admin))).body.scopes;

describe('no escalation, whatever the sequence', () => {
  it('yields no token, credential, policy or agent with a scope the caller lacks', async () => {
    await fc.assert(
      fc.asyncProperty(scenario, async ({ callerScopes, otherScopes, writes }) => {
        const caller = await createAgent(server, admin, { name: 'prop-caller', scopes: callerScopes });
        const token = await getToken(server, caller.agentId, caller.clientSecret);
        const other = await createAgent(server, admin, { name: 'prop-other', scopes: otherScopes });
        const agents = [ADMIN.clientId, other.agentId, caller.agentId];
        const before = new Map([[ADMIN.clientId, await scopesOf(ADMIN.clientId)], [other.agentId, otherScopes]]);
        const secrets: { agentId: string; secret: string }[] = [];
        const policies: string[] = [];
        const changed = new Set<string>();

        for (const step of writes) {
          if (step.kind === 'create') {
            const reply = await send(server, '/api/v1/agents', json('POST', { name: 'prop-created', scopes: step.scopes }, token));
            if (reply.status === 201) agents.push(reply.body.agentId);
            continue;
          }
          if (step.kind === 'registrationPolicy') {
            const reply = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'prop/reg', scopes: step.scopes }, token));
            if (reply.status === 201) policies.push(reply.body.id);
            continue;
          }
          const agentId = agents[step.target % agents.length];
          if (step.kind === 'setScopes') {
            const reply = await send(server, `/api/v1/agents/${agentId}`, json('PATCH', { scopes: step.scopes }, token));
            if (reply.status === 200) changed.add(agentId);
          } else if (step.kind === 'credential') {
            const reply = await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(token, { method: 'POST' }));
            if (reply.status === 201) secrets.push({ agentId, secret: reply.body.clientSecret });
          } else {
            const body = { provider: 'github', repository: 'prop/trust', agentId, ...(step.scopes ? { scopes: step.scopes } : {}) };
            const reply = await send(server, '/api/v1/oidc/trust-policies', json('POST', body, token));
            if (reply.status === 201) policies.push(reply.body.id);
          }
        }

        for (const { agentId, secret } of secrets) {
          const granted = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: secret }));
          if (granted.status === 200) expect(within(callerScopes, granted.body.scope.split(' ').filter(Boolean))).toBe(true);
        }
        for (const id of policies) {
          const policy = (await send(server, `/api/v1/oidc/trust-policies/${id}`, bearer(admin))).body;
          const obtainable = policy.scopes ?? (await scopesOf(policy.agentId));
          expect(within(callerScopes, obtainable)).toBe(true);
        }
        for (const agentId of [...agents.slice(3), ...changed]) expect(within(callerScopes, await scopesOf(agentId))).toBe(true);
        for (const [agentId, scopesBefore] of before) {
          if (!within(callerScopes, scopesBefore)) expect(await scopesOf(agentId)).toEqual(scopesBefore);
        }
        expect(await scopesOf(ADMIN.clientId)).toEqual([...KNOWN_SCOPES]);
      }),
      { ...SEED, numRuns: 25 },
    );
  }, 120_000);
});
