/**
 * The database link is cut while requests are flowing, then restored. Every request
 * gets either its normal answer or a 503 in its path family's shape, the process keeps
 * serving /healthz, nothing is half written, and service comes back without a restart.
 * (test/http/operations.test.ts covers single requests during a quiet outage.)
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { isRealPostgres } from '../support/database.js';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, createAgent, form, json, send, type AgentWithSecret, type Reply } from '../support/api.js';
import { claimsOfJwt, readWholeAuditLog, sleep, startLoad, type Sample } from '../support/load.js';

const AUDIENCE = 'https://idp.test/github';
const describeWithPostgres = isRealPostgres ? describe : describe.skip; // the embedded database is in-process: there is no link to cut

type Family = 'oauth' | 'api' | 'health';
interface Operation {
  readonly name: string;
  readonly family: Family;
  readonly needsDatabase: boolean;
  run(): Promise<Reply>;
}

describeWithPostgres('database outage under load', () => {
  let github: FakeGitHubIssuer;
  let proxy: TcpProxy;
  let direct: TestServer;
  let instance: TestServer;
  let admin: string;
  let agent: AgentWithSecret;
  const issued: string[] = [];

  beforeAll(async () => {
    github = await startFakeGitHubIssuer({ audience: AUDIENCE });
    const target = new URL(process.env.DATABASE_URL as string);
    proxy = await startTcpProxy(target.hostname, Number(target.port || 5432));
    const env = { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE, MONTHLY_TOKEN_LIMIT: '100000', RATE_LIMIT_PER_MINUTE: '100000' };
    direct = await startTestServer({ env });
    const viaProxy = new URL(direct.testDatabase.url as string);
    viaProxy.port = String(proxy.port);
    instance = await startTestServer({ env: { ...env, DATABASE_URL: viaProxy.toString() }, shareWith: direct });
    admin = await adminToken(instance);
    agent = await createAgent(instance, admin, { scopes: ['agents:read'] });
    const policy = await send(instance, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/octo-repo', agentId: agent.agentId }, admin));
    expect(policy.status).toBe(201);
  });
  afterAll(async () => {
    await instance.stop();
    await direct.stop();
    await proxy.close();
    await github.close();
  });

  function operations(): Operation[] {
    const remember = (reply: Reply) => {
      if (reply.status === 200 && reply.body?.access_token) issued.push(reply.body.access_token);
      return reply;
    };
    return [
      {
        name: 'client credentials',
        family: 'oauth',
        needsDatabase: true,
        run: async () =>
          remember(await send(instance, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: agent.clientSecret }))),
      },
      {
        name: 'GitHub exchange',
        family: 'oauth',
        needsDatabase: true,
        run: async () => {
          const token = await github.mintIdToken({ ...loadClaimFixture('push-main'), aud: AUDIENCE });
          return remember(await send(instance, '/api/v1/oidc/token', json('POST', { token, agentId: agent.agentId })));
        },
      },
      {
        name: 'introspection',
        family: 'oauth',
        needsDatabase: true,
        run: () => send(instance, '/api/v1/token/introspect', bearer(admin, form({ token: issued[issued.length - 1] ?? 'none' }))),
      },
      {
        name: 'revocation',
        family: 'oauth',
        needsDatabase: true,
        run: () => send(instance, '/api/v1/token/revoke', bearer(admin, form({ token: issued[Math.floor(issued.length / 2)] ?? 'none' }))),
      },
      { name: 'agent list', family: 'api', needsDatabase: true, run: () => send(instance, '/api/v1/agents?limit=5', bearer(admin)) },
      { name: 'agent creation', family: 'api', needsDatabase: true, run: () => send(instance, '/api/v1/agents', json('POST', { name: 'outage-burst' }, admin)) },
      {
        name: 'credential creation',
        family: 'api',
        needsDatabase: true,
        run: () => send(instance, `/api/v1/agents/${agent.agentId}/credentials`, bearer(admin, { method: 'POST' })),
      },
      { name: 'audit read', family: 'api', needsDatabase: true, run: () => send(instance, '/api/v1/audit?limit=5', bearer(admin)) },
      { name: 'readiness', family: 'health', needsDatabase: true, run: () => send(instance, '/readyz') },
      { name: 'liveness', family: 'health', needsDatabase: false, run: () => send(instance, '/healthz') },
      { name: 'JWKS', family: 'health', needsDatabase: false, run: () => send(instance, '/.well-known/jwks.json') },
    ];
  }

  function expectDocumentedUnavailable(reply: Reply, family: Family): void {
    expect(reply.headers.get('retry-after')).toBe('1');
    // Seed 002: a 503 is {code, message} on every endpoint, the grant endpoints' included.
    expect(reply.body).toEqual({ code: 'SERVICE_UNAVAILABLE', message: 'The service is temporarily unavailable. Please retry shortly.' });
    if (family === 'oauth') expect(reply.headers.get('cache-control')).toBe('no-store');
  }

  it('answers 503 in each shape while the link is down, never 500, and recovers without a restart', async () => {
    const ops = operations();
    const load = startLoad(
      4,
      async (_, index) => {
        const op = ops[index % ops.length];
        const reply = await op.run();
        await sleep(25); // paced: at most ~160 requests a second, whatever the cap
        return { op, reply };
      },
      5000, // a hard bound high enough that waiting (up to 15 s) for the recovery cannot run out of requests
    );
    const phase = async (ms: number) => {
      await sleep(ms);
      return performance.now();
    };
    await phase(700);
    proxy.cut();
    const cutAt = performance.now();
    const settledAt = await phase(300); // requests in flight at the cut end within this
    const restoredAt = await phase(1200);
    proxy.restore();
    // Recovered: every database operation has succeeded again since the restore.
    const recoveredAfter = (samples: readonly Sample<{ op: Operation; reply: Reply }>[]) =>
      ops.every((op) => samples.some((s) => s.startedAt > restoredAt && s.value.op === op && s.value.reply.status < 300));
    for (let waited = 0; !recoveredAfter(load.samples) && waited < 15_000; waited += 100) await sleep(100);
    const samples = await load.stop();
    expect(recoveredAfter(samples)).toBe(true);

    const replies = samples.map((sample) => ({ ...sample.value, sample }));
    // Never a 500, never anything but the normal answer or the documented 503.
    const unexpected = replies.filter(({ reply }) => ![200, 201, 503].includes(reply.status));
    expect(unexpected.map(({ op, reply }) => `${op.name}: ${reply.status} ${reply.text}`)).toEqual([]);
    for (const { op, reply } of replies.filter(({ reply }) => reply.status === 503)) expectDocumentedUnavailable(reply, op.family);
    // While the link is down, everything that needs the database is refused quickly, and the rest still works.
    const duringOutage = replies.filter(({ sample }) => sample.startedAt > settledAt && sample.finishedAt < restoredAt);
    expect(duringOutage.length).toBeGreaterThan(20);
    for (const { op, reply } of duringOutage) expect([op.name, reply.status]).toEqual([op.name, op.needsDatabase ? 503 : 200]);
    const slowest = Math.max(...replies.filter(({ sample }) => sample.startedAt > cutAt && sample.finishedAt < restoredAt).map(({ sample }) => sample.finishedAt - sample.startedAt));
    expect(slowest).toBeLessThan(6_000); // acquireConnectionTimeout is 5 s: no request hangs on a dead link
    expect(replies.some(({ sample, reply }) => sample.finishedAt < cutAt && reply.status === 200)).toBe(true);

    const lines = instance.logs.map((line) => JSON.parse(line));
    expect(lines.filter((line) => line.msg === 'unhandled error')).toEqual([]);
    expect(lines.some((line) => line.msg === 'database unavailable')).toBe(true);
  }, 90_000);

  it('left no half-written state: every token, revocation, agent and credential has exactly its audit event', async () => {
    const knex = direct.deps.knex;
    const token = await adminToken(direct);
    const audit = await readWholeAuditLog(direct, token);
    const eventsOf = (type: string) => audit.filter((event) => event.type === type);

    const tokens = await knex('access_tokens').where({ agent_id: agent.agentId }).select('jti', 'revoked_at');
    const grantEvents = [...eventsOf('token.issued'), ...eventsOf('oidc.exchange.granted')].filter((event) => event.agentId === agent.agentId);
    expect(grantEvents.map((event) => event.data.jti).sort()).toEqual(tokens.map((row) => row.jti).sort());
    const [quota] = await knex('token_quotas').where({ agent_id: agent.agentId });
    expect(quota.count).toBe(tokens.length);
    // Every token a client was given exists; a grant cut off before its answer may exist unseen, never the reverse.
    const known = new Set(tokens.map((row) => row.jti));
    expect(issued.filter((accessToken) => !known.has(claimsOfJwt(accessToken).jti))).toEqual([]);

    const revokedJtis = tokens.filter((row) => row.revoked_at !== null).map((row) => row.jti).sort();
    expect(eventsOf('token.revoked').map((event) => event.data.jti).sort()).toEqual(revokedJtis);

    const agentIds = await knex('agents').pluck('id');
    expect(eventsOf('agent.created').map((event) => event.agentId).sort()).toEqual(agentIds.filter((id) => id !== direct.config.bootstrapAdmin?.clientId).sort());
    const credentialIds = await knex('credentials').where({ agent_id: agent.agentId }).pluck('id');
    expect(eventsOf('credential.created').filter((event) => event.agentId === agent.agentId).map((event) => event.data.credentialId).sort()).toEqual(credentialIds.sort());

    expect((await send(direct, '/api/v1/audit/verify', bearer(token))).body).toEqual({ valid: true, checked: audit.length, digestsChecked: 0 });
    // And the instance that lived through the outage serves normally on the same pool.
    for (let i = 0; i < 10; i += 1) expect((await send(instance, '/api/v1/agents?limit=1', bearer(admin))).status).toBe(200);
  });
});
