import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, getToken, send } from '../support/api.js';

let server: TestServer;
let admin: string;

beforeAll(async () => {
  server = await startTestServer();
  admin = await adminToken(server);
});
afterAll(() => server.stop());

describe('audit log', () => {
  it('records the agent, credential and token lifecycle without secrets, newest first', async () => {
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    await send(server, '/api/v1/token/revoke', bearer(token, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${token}` }));
    await send(server, `/api/v1/agents/${agent.agentId}/suspend`, bearer(admin, { method: 'POST' }));
    const reply = await send(server, `/api/v1/audit?agentId=${agent.agentId}`, bearer(admin));
    expect(reply.status).toBe(200);
    expect(reply.body.data.map((event: { type: string }) => event.type)).toEqual([
      'agent.suspended',
      'token.revoked',
      'token.issued',
      'credential.created',
      'agent.created',
    ]);
    expect(reply.text).not.toContain(agent.clientSecret);
    expect(reply.text).not.toContain(token);
    expect(reply.body.data[0]).toMatchObject({ agentId: agent.agentId, actor: `agent:${(JSON.parse(Buffer.from(admin.split('.')[1], 'base64url').toString()) as { sub: string }).sub}` });
  });

  it('filters by type and since, and paginates', async () => {
    const byType = await send(server, '/api/v1/audit?type=token.issued&limit=1', bearer(admin));
    expect(byType.body.data).toHaveLength(1);
    expect(byType.body.data[0].type).toBe('token.issued');
    expect(byType.body.nextCursor).toEqual(expect.any(String));
    const next = await send(server, `/api/v1/audit?type=token.issued&limit=1&cursor=${byType.body.nextCursor}`, bearer(admin));
    expect(Number(next.body.data[0].id)).toBeLessThan(Number(byType.body.data[0].id));
    const future = await send(server, `/api/v1/audit?since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, bearer(admin));
    expect(future.body.data).toEqual([]);
    expect((await send(server, '/api/v1/audit?since=yesterday', bearer(admin))).status).toBe(400);
  });

  it('verifies an intact chain and names the first tampered event', async () => {
    const intact = await send(server, '/api/v1/audit/verify', bearer(admin));
    expect(intact.body).toEqual({ valid: true, checked: expect.any(Number), digestsChecked: 0 });
    expect(intact.body.checked).toBeGreaterThan(5);
    const knex = server.deps.knex;
    const victim = await knex('audit_events').whereNotNull('chain_seq').orderBy('chain_seq').offset(2).first('id');
    await knex('audit_events').where({ id: victim.id }).update({ data: JSON.stringify({ forged: true }) });
    const tampered = await send(server, '/api/v1/audit/verify', bearer(admin));
    expect(tampered.body).toEqual({ valid: false, checked: 2, firstInvalidId: String(victim.id), firstInvalidSeq: 3, digestsChecked: 0 });
  });

  it('detects a deleted event', async () => {
    const other = await startTestServer();
    try {
      const token = await adminToken(other);
      await createAgent(other, token);
      await send(other, '/api/v1/audit/verify', bearer(token));
      const second = await other.deps.knex('audit_events').where({ chain_seq: 2 }).first('id');
      const third = await other.deps.knex('audit_events').where({ chain_seq: 3 }).first('id');
      await other.deps.knex('audit_events').where({ id: second.id }).delete();
      const reply = await send(other, '/api/v1/audit/verify', bearer(token));
      expect(reply.body).toEqual({ valid: false, checked: 1, firstInvalidId: String(third.id), firstInvalidSeq: 2, digestsChecked: 0 });
    } finally {
      await other.stop();
    }
  });

  it('requires audit:read', async () => {
    const agent = await createAgent(server, admin, { scopes: ['agents:read'] });
    const token = await getToken(server, agent.agentId, agent.clientSecret);
    expect((await send(server, '/api/v1/audit', bearer(token))).status).toBe(403);
    expect((await send(server, '/api/v1/audit/verify', bearer(token))).status).toBe(403);
  });
});
