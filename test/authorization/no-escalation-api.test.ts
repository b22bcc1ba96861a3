/**
 * No escalation over HTTP: every write a caller makes to an agent, or to what belongs to it,
 * is refused with 403 FORBIDDEN when the agent holds (or would hold) a scope the caller's
 * token lacks, writes nothing and audits nothing as done; the same write by a caller that
 * holds every such scope goes through. First the four attacks an agents:write token could
 * make before this rule.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { KNOWN_SCOPES } from '../../server/src/authorization/scopes.js';
import { adminToken, bearer, createAgent, form, getToken, json, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';

let server: TestServer;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

async function callerWith(scopes: string[], name = 'caller'): Promise<{ agent: AgentWithSecret; token: string }> {
  const agent = await createAgent(server, admin, { name, scopes });
  return { agent, token: await getToken(server, agent.agentId, agent.clientSecret) };
}

/** Audit events after `afterId`, by type. */
async function auditedSince(afterId: number): Promise<string[]> {
  const rows = await server.deps.knex('audit_events').where('id', '>', afterId).orderBy('id').select('type');
  return rows.map((row: { type: string }) => row.type);
}

const lastAuditId = async () => Number((await server.deps.knex('audit_events').max({ id: 'id' }))[0].id);

/** What a write could change: the agent itself, its credentials, and the trust policies. */
async function snapshot(agentId: string): Promise<unknown> {
  const [agent, credentials, policies] = await Promise.all([
    send(server, `/api/v1/agents/${agentId}`, bearer(admin)),
    send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin)),
    send(server, '/api/v1/oidc/trust-policies?limit=100', bearer(admin)),
  ]);
  return { agent: agent.body, credentials: credentials.body, policies: policies.body };
}

function expectForbidden(reply: Reply): void {
  expect(reply.status).toBe(403);
  expect(reply.body.code).toBe('FORBIDDEN');
  expect(reply.body.message).not.toMatch(/agents:read|tokens:read|audit:read|webhooks|admin:orgs/);
}

describe('the attacks an agents:write token could make', () => {
  let attacker: { agent: AgentWithSecret; token: string };
  beforeAll(async () => {
    attacker = await callerWith(['agents:read', 'agents:write'], 'attacker');
  });

  it('cannot create an agent with every scope', async () => {
    const before = await lastAuditId();
    const reply = await send(server, '/api/v1/agents', json('POST', { name: 'root', scopes: [...KNOWN_SCOPES] }, attacker.token));
    expectForbidden(reply);
    expect(await auditedSince(before)).toEqual([]);
    const names = (await send(server, '/api/v1/agents?limit=100', bearer(admin))).body.data.map((agent: { name: string }) => agent.name);
    expect(names).not.toContain('root');
  });

  it('cannot add audit:read and admin:orgs to its own agent', async () => {
    const before = await snapshot(attacker.agent.agentId);
    const reply = await send(
      server,
      `/api/v1/agents/${attacker.agent.agentId}`,
      json('PATCH', { scopes: ['agents:read', 'agents:write', 'audit:read', 'admin:orgs'] }, attacker.token),
    );
    expectForbidden(reply);
    expect(await snapshot(attacker.agent.agentId)).toEqual(before);
  });

  it("cannot mint a credential for the bootstrap admin and read its secret", async () => {
    const before = await snapshot(ADMIN.clientId);
    const auditBefore = await lastAuditId();
    const reply = await send(server, `/api/v1/agents/${ADMIN.clientId}/credentials`, bearer(attacker.token, { method: 'POST' }));
    expectForbidden(reply);
    expect(reply.text).not.toContain('sk_live_');
    expect(await snapshot(ADMIN.clientId)).toEqual(before);
    expect(await auditedSince(auditBefore)).toEqual([]);
  });

  it('cannot create a trust policy that lets a repository act as the bootstrap admin', async () => {
    const before = await snapshot(ADMIN.clientId);
    const reply = await send(
      server,
      '/api/v1/oidc/trust-policies',
      json('POST', { provider: 'github', repository: 'attacker/any', agentId: ADMIN.clientId }, attacker.token),
    );
    expectForbidden(reply);
    expect(await snapshot(ADMIN.clientId)).toEqual(before);
  });

  it('cannot open registration to agents with scopes it lacks', async () => {
    const reply = await send(
      server,
      '/api/v1/oidc/trust-policies',
      json('POST', { provider: 'github', repository: 'attacker/registry', scopes: ['audit:read'] }, attacker.token),
    );
    expectForbidden(reply);
  });

  it("cannot revoke the bootstrap admin's tokens", async () => {
    const reply = await send(server, '/api/v1/token/revoke', bearer(attacker.token, form({ token: admin })));
    expectForbidden(reply);
    expect((await send(server, '/api/v1/agents?limit=1', bearer(admin))).status).toBe(200);
  });
});

/** Every write route, for a target agent holding audit:read (which the lesser caller lacks). */
interface Write {
  readonly name: string;
  /** Prepares what the write needs (as the admin) and returns the request. */
  prepare(target: AgentWithSecret): Promise<(token: string) => Promise<Reply>>;
  readonly status: number;
}

const WRITES: Write[] = [
  { name: 'PATCH its name', status: 200, prepare: async (t) => (token) => send(server, `/api/v1/agents/${t.agentId}`, json('PATCH', { name: 'renamed' }, token)) },
  { name: 'suspend it', status: 200, prepare: async (t) => (token) => send(server, `/api/v1/agents/${t.agentId}/suspend`, bearer(token, { method: 'POST' })) },
  {
    name: 'reactivate it',
    status: 200,
    prepare: async (t) => {
      await send(server, `/api/v1/agents/${t.agentId}/suspend`, bearer(admin, { method: 'POST' }));
      return (token) => send(server, `/api/v1/agents/${t.agentId}/reactivate`, bearer(token, { method: 'POST' }));
    },
  },
  { name: 'decommission it', status: 200, prepare: async (t) => (token) => send(server, `/api/v1/agents/${t.agentId}`, bearer(token, { method: 'DELETE' })) },
  { name: 'create a credential', status: 201, prepare: async (t) => (token) => send(server, `/api/v1/agents/${t.agentId}/credentials`, bearer(token, { method: 'POST' })) },
  {
    name: 'revoke a credential',
    status: 200,
    prepare: async (t) => (token) => send(server, `/api/v1/agents/${t.agentId}/credentials/${t.credentialId}`, bearer(token, { method: 'DELETE' })),
  },
  {
    name: 'revoke one of its tokens',
    status: 200,
    prepare: async (t) => {
      const its = await getToken(server, t.agentId, t.clientSecret);
      return (token) => send(server, '/api/v1/token/revoke', bearer(token, form({ token: its })));
    },
  },
  {
    name: 'create a trust policy for it',
    status: 201,
    prepare: async (t) => (token) => send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/target', agentId: t.agentId }, token)),
  },
  {
    name: 'delete a trust policy of it',
    status: 200,
    prepare: async (t) => {
      const policy = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/target', agentId: t.agentId }, admin));
      return (token) => send(server, `/api/v1/oidc/trust-policies/${policy.body.id}`, bearer(token, { method: 'DELETE' }));
    },
  },
];

describe('every write to an agent, by a caller holding less than the agent and by one holding at least as much', () => {
  let lesser: string;
  let peer: string;
  beforeAll(async () => {
    lesser = (await callerWith(['agents:read', 'agents:write', 'tokens:read'], 'lesser')).token;
    peer = (await callerWith(['agents:read', 'agents:write', 'tokens:read', 'audit:read'], 'peer')).token;
  });

  it.each(WRITES.map((write) => [write.name, write] as const))('%s', async (_, write) => {
    const target = await createAgent(server, admin, { name: 'target', scopes: ['agents:read', 'audit:read'] });
    const request = await write.prepare(target);
    const before = await snapshot(target.agentId);
    const auditBefore = await lastAuditId();
    expectForbidden(await request(lesser));
    expect(await snapshot(target.agentId)).toEqual(before);
    expect(await auditedSince(auditBefore)).toEqual([]);

    const allowed = await request(peer);
    expect(allowed.status).toBe(write.status);
    expect(await auditedSince(auditBefore)).not.toEqual([]);
  });
});

describe('scopes an agent is given', () => {
  let peer: { agent: AgentWithSecret; token: string };
  beforeAll(async () => {
    peer = await callerWith(['agents:read', 'agents:write', 'audit:read'], 'giver');
  });

  it('may be any the caller carries, and none it does not', async () => {
    const created = await send(server, '/api/v1/agents', json('POST', { name: 'given', scopes: ['audit:read'] }, peer.token));
    expect(created.status).toBe(201);
    expectForbidden(await send(server, `/api/v1/agents/${created.body.agentId}`, json('PATCH', { scopes: ['audit:read', 'tokens:read'] }, peer.token)));
    const narrowed = await send(server, `/api/v1/agents/${created.body.agentId}`, json('PATCH', { scopes: ['agents:read'] }, peer.token));
    expect(narrowed.body.scopes).toEqual(['agents:read']);
  });

  it('are judged by the token presented, not by all its agent holds', async () => {
    const narrow = await getToken(server, peer.agent.agentId, peer.agent.clientSecret, 'agents:read agents:write');
    expectForbidden(await send(server, '/api/v1/agents', json('POST', { name: 'via-narrow', scopes: ['audit:read'] }, narrow)));
  });

  it('may not be changed by the agent itself, even within what it holds', async () => {
    expectForbidden(await send(server, `/api/v1/agents/${peer.agent.agentId}`, json('PATCH', { scopes: ['agents:read', 'agents:write'] }, peer.token)));
    const renamed = await send(server, `/api/v1/agents/${peer.agent.agentId}`, json('PATCH', { name: 'giver-renamed' }, peer.token));
    expect(renamed.status).toBe(200);
  });

  it('of a trust policy must be among the caller’s', async () => {
    const target = await createAgent(server, admin, { name: 'policy-target', scopes: ['agents:read'] });
    const reply = await send(
      server,
      '/api/v1/oidc/trust-policies',
      json('POST', { provider: 'github', repository: 'octo-org/within', agentId: target.agentId, scopes: ['agents:read'] }, peer.token),
    );
    expect(reply.status).toBe(201);
    const registration = await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/reg', scopes: ['audit:read'] }, peer.token));
    expect(registration.status).toBe(201);
    expectForbidden(await send(server, `/api/v1/oidc/trust-policies/${registration.body.id}`, bearer((await callerWith(['agents:write'], 'small')).token, { method: 'DELETE' })));
  });
});
