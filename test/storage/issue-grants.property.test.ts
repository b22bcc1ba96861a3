/**
 * issue_grants decides a batch exactly as the same grants taken one at a time, in agent
 * order: the same outcome for every grant and the same counters, tokens and audit events
 * after. Each case builds two identical worlds of agents (same statuses, scopes,
 * credentials and counters, ids in the same order) in one database; one world gets the
 * batch in a single call, the other each grant alone. Both must also agree with a model
 * of the rules written out here (gate, rate window, the agent's month, the organization's
 * month). Each world has its own organizations, of the same statuses, limits and counters,
 * and its own single-use tokens (one of them spent before the batch).
 */
import crypto from 'node:crypto';
import { beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';
import type { Config } from '../../server/src/config.js';
import { issueGrantBatch, type GrantRow } from '../../server/src/oauth/grant-batches.js';
import { preparedStatements, type RunPrepared } from '../../server/src/storage/prepared.js';
import { useMigratedDatabase } from '../support/database.js';
import { SEED } from '../support/fast-check.js';

const SCOPES = ['agents:read', 'tokens:read'];
const WINDOWS = [1_800_000_000 - 60, 1_800_000_000]; // a minute boundary can fall inside a batch
const MONTHS = ['2026-11', '2026-12'];

const scopeSet = fc.subarray(SCOPES);
const orgArbitrary = fc.record({
  status: fc.constantFrom('active', 'active', 'active', 'suspended'),
  limit: fc.oneof(fc.constant(null), fc.integer({ min: 1, max: 8 })),
  quotaCount: fc.nat(4), // in the month MONTHS[0] before the batch
});
const agentArbitrary = fc.record({
  org: fc.nat(1),
  status: fc.constantFrom('active', 'active', 'suspended'),
  scopes: scopeSet,
  rateCount: fc.nat(4), // in the window WINDOWS[0] before the batch
  quotaCount: fc.nat(4), // in the month MONTHS[0] before the batch
});
const caseArbitrary = fc.record({
  orgs: fc.array(orgArbitrary, { minLength: 1, maxLength: 2 }),
  agents: fc.array(agentArbitrary, { minLength: 1, maxLength: 3 }),
  rateLimit: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 })),
  monthlyLimit: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 6 })),
  grants: fc.array(
    fc.record({
      agent: fc.nat(2),
      credential: fc.constantFrom('live', 'revoked', 'another agent', 'none'),
      scopes: scopeSet,
      window: fc.nat(1),
      month: fc.constantFrom(0, 0, 1),
      // The single-use token the grant spends: none, one of two shared by the batch's grants, or one spent before.
      token: fc.constantFrom(null, null, null, 0, 1, 'spent' as const),
    }),
    { minLength: 1, maxLength: 12 },
  ),
});
type Case = typeof caseArbitrary extends fc.Arbitrary<infer T> ? T : never;

interface Decision {
  gate: number;
  rate_count: number | null;
  quota_count: number | null;
  org_quota_count: number | null;
  org_limit: number | null;
  refusal: string | null;
  issued: number;
}

/** The rules, one grant at a time in agent order (agent ids sort by agent index). */
function model(spec: Case) {
  const rate = new Map(spec.agents.map((agent, i) => [`${i}/${WINDOWS[0]}`, agent.rateCount]));
  const quota = new Map(spec.agents.map((agent, i) => [`${i}/${MONTHS[0]}`, agent.quotaCount]));
  const orgQuota = new Map(spec.orgs.map((org, o) => [`${o}/${MONTHS[0]}`, org.quotaCount]));
  const orgOf = (a: number) => spec.agents[a].org % spec.orgs.length;
  const decisions: Decision[] = new Array(spec.grants.length);
  const agentOf = (i: number) => spec.grants[i].agent % spec.agents.length;
  const order = spec.grants.map((_grant, i) => i).sort((a, b) => agentOf(a) - agentOf(b) || a - b);
  const spent = new Set<number | 'spent'>(['spent']);
  for (const i of order) {
    const grant = spec.grants[i];
    const a = agentOf(i);
    const agent = spec.agents[a];
    const org = spec.orgs[orgOf(a)];
    const refused = (refusal: string, counts: Partial<Decision> = {}): Decision =>
      ({ gate: 1, rate_count: null, quota_count: null, org_quota_count: null, org_limit: org.limit, refusal, issued: 0, ...counts });
    // Spent first, whatever the gate decides: a second use is a replay.
    if (grant.token !== null) {
      const isReplay = spent.has(grant.token);
      spent.add(grant.token);
      if (isReplay) {
        decisions[i] = refused('replay', { gate: 0 });
        continue;
      }
    }
    const credentialOk = grant.credential === 'live' || grant.credential === 'none' || (grant.credential === 'another agent' && spec.agents.length === 1);
    if (agent.status !== 'active' || org.status !== 'active' || !grant.scopes.every((scope) => agent.scopes.includes(scope)) || !credentialOk) {
      decisions[i] = refused('gate', { gate: 0 });
      continue;
    }
    let rateCount: number | null = null;
    if (spec.rateLimit > 0) {
      const key = `${a}/${WINDOWS[grant.window]}`;
      rateCount = (rate.get(key) ?? 0) + 1;
      rate.set(key, rateCount);
      if (rateCount > spec.rateLimit) {
        decisions[i] = refused('rate', { rate_count: rateCount });
        continue;
      }
    }
    // Both months count every grant; each refuses past its limit (0 or null: none).
    const key = `${a}/${MONTHS[grant.month]}`;
    const before = quota.get(key) ?? 0;
    if (spec.monthlyLimit > 0 && before >= spec.monthlyLimit) {
      decisions[i] = refused('quota', { rate_count: rateCount });
      continue;
    }
    const orgKey = `${orgOf(a)}/${MONTHS[grant.month]}`;
    const orgBefore = orgQuota.get(orgKey) ?? 0;
    if (org.limit !== null && orgBefore >= org.limit) {
      decisions[i] = refused('org_quota', { rate_count: rateCount, quota_count: before + 1 });
      continue;
    }
    quota.set(key, before + 1);
    orgQuota.set(orgKey, orgBefore + 1);
    decisions[i] = { gate: 1, rate_count: rateCount, quota_count: before + 1, org_quota_count: orgBefore + 1, org_limit: org.limit, refusal: null, issued: 1 };
  }
  // The counters after, as stateOf lists them: by agent, then window or month.
  const counters = (map: Map<string, number>) =>
    [...map]
      .filter(([, count]) => count > 0)
      .map(([key, count]) => {
        const [agent, period] = key.split('/');
        return [Number(agent), period, count] as const;
      })
      .sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0));
  return {
    decisions,
    windows: counters(rate).map(([agent, window, count]) => [agent, Number(window), count]),
    quotas: counters(quota),
    orgQuotas: counters(orgQuota),
  };
}

interface World {
  readonly orgIds: string[];
  readonly agentIds: string[];
  readonly live: string[];
  readonly revoked: string[];
  /** The keys of the world's single-use tokens 0, 1 and 'spent' (spent before the batch). */
  readonly tokenKeys: Record<string, string>;
}

describe('issue_grants', () => {
  const database = useMigratedDatabase();
  let query: RunPrepared;
  beforeAll(() => {
    query = preparedStatements(database());
  });

  /** Agents whose ids sort in the order given (index first), so both worlds share one agent order. */
  async function buildWorld(spec: Case): Promise<World> {
    const tail = crypto.randomUUID().slice(8);
    const agentIds = spec.agents.map((_agent, index) => `${index.toString(16).padStart(8, '0')}${tail}`);
    const live = agentIds.map(() => crypto.randomUUID());
    const revoked = agentIds.map(() => crypto.randomUUID());
    const knex = database().knex;
    const orgIds = spec.orgs.map(() => crypto.randomUUID());
    await knex('organizations').insert(
      spec.orgs.map((org, o) => ({ id: orgIds[o], slug: `o-${orgIds[o]}`, name: `o${o}`, status: org.status, monthly_tokens: org.limit })),
    );
    const orgQuotaRows = spec.orgs.map((org, o) => ({ org_id: orgIds[o], month: MONTHS[0], count: org.quotaCount })).filter((row) => row.count > 0);
    if (orgQuotaRows.length > 0) await knex('org_token_quotas').insert(orgQuotaRows);
    await knex('agents').insert(
      spec.agents.map((agent, i) => ({ id: agentIds[i], org_id: orgIds[agent.org % spec.orgs.length], name: `a${i}`, status: agent.status, scopes: agent.scopes })),
    );
    await knex('credentials').insert([
      ...agentIds.map((agentId, i) => ({ id: live[i], agent_id: agentId, secret_hash: Buffer.alloc(32) })),
      ...agentIds.map((agentId, i) => ({ id: revoked[i], agent_id: agentId, secret_hash: Buffer.alloc(32), revoked_at: new Date() })),
    ]);
    const counted = spec.agents.map((agent, i) => ({ agent, id: agentIds[i] }));
    const rateRows = counted.filter(({ agent }) => agent.rateCount > 0);
    if (rateRows.length > 0) {
      await knex('rate_limit_windows').insert(rateRows.map(({ agent, id }) => ({ client_id: id, window_start: WINDOWS[0], count: agent.rateCount })));
    }
    const quotaRows = counted.filter(({ agent }) => agent.quotaCount > 0);
    if (quotaRows.length > 0) {
      await knex('token_quotas').insert(quotaRows.map(({ agent, id }) => ({ agent_id: id, month: MONTHS[0], count: agent.quotaCount })));
    }
    const tokenKeys = Object.fromEntries(['0', '1', 'spent'].map((token) => [token, `https://issuer.example/${tail}#${token}`]));
    await knex('github_used_jtis').insert({ jti: tokenKeys.spent, expires_at: new Date(Date.now() + 600_000) });
    return { orgIds, agentIds, live, revoked, tokenKeys };
  }

  function rowsFor(spec: Case, world: World): GrantRow[] {
    return spec.grants.map((grant) => {
      const agent = grant.agent % spec.agents.length;
      const credentialId = {
        live: world.live[agent],
        revoked: world.revoked[agent],
        'another agent': world.live[(agent + 1) % spec.agents.length],
        none: null,
      }[grant.credential];
      const jti = crypto.randomUUID();
      return {
        agentId: world.agentIds[agent],
        credentialId,
        trustPolicies: null,
        bindingId: null,
        partnerRevision: null,
        usedJti: grant.token === null ? null : world.tokenKeys[String(grant.token)],
        usedJtiExp: grant.token === null ? null : 1_900_000_000,
        scope: grant.scopes.join(' '),
        windowStart: WINDOWS[grant.window],
        month: MONTHS[grant.month],
        jti,
        grantType: 'client_credentials',
        issuedAt: WINDOWS[grant.window],
        expiresAt: WINDOWS[grant.window] + 900,
        auditType: 'token.issued',
        auditActor: `agent:${world.agentIds[agent]}`,
        auditData: JSON.stringify({ jti }),
      };
    });
  }

  /** Everything the grants wrote, with each world's ids replaced by the agent's index. */
  async function stateOf(world: World) {
    const knex = database().knex;
    const index = (id: string) => world.agentIds.indexOf(id);
    const windows = await knex('rate_limit_windows').whereIn('client_id', world.agentIds).orderBy(['client_id', 'window_start']);
    // A counter row at 0 says nothing: one may be made for a grant that another step then refused.
    const quotas = await knex('token_quotas').whereIn('agent_id', world.agentIds).where('count', '>', 0).orderBy(['agent_id', 'month']);
    const orgQuotas = await knex('org_token_quotas').whereIn('org_id', world.orgIds).where('count', '>', 0).orderBy(['org_id', 'month']);
    const tokens = await knex('access_tokens').whereIn('agent_id', world.agentIds).orderBy(['agent_id', 'issued_at']);
    const events = await knex('audit_events').whereIn('agent_id', world.agentIds).orderBy('id');
    const jtis = new Set(tokens.map((token) => token.jti));
    return {
      windows: windows.map((w) => [index(w.client_id), Number(w.window_start), w.count]),
      quotas: quotas.map((q) => [index(q.agent_id), q.month, q.count]),
      orgQuotas: orgQuotas
        .map((q) => [world.orgIds.indexOf(q.org_id), q.month, q.count] as const)
        .sort((x, y) => x[0] - y[0] || (x[1] < y[1] ? -1 : x[1] > y[1] ? 1 : 0)),
      tokens: tokens.map((t) => [index(t.agent_id), t.scope, t.credential_id === null ? 'none' : 'some']).sort(),
      // In the order the chain will link them, each the event of a recorded token.
      events: events.map((e) => [index(e.agent_id), e.type, jtis.has(e.data.jti)]),
    };
  }

  it('decides a batch exactly as its grants one at a time, in agent order', async () => {
    await fc.assert(
      fc.asyncProperty(caseArbitrary, async (spec) => {
        const config = { rateLimitPerMinute: spec.rateLimit, monthlyTokenLimit: spec.monthlyLimit } as Config;
        const batchWorld = await buildWorld(spec);
        const aloneWorld = await buildWorld(spec);

        const batched = await issueGrantBatch(query, config, rowsFor(spec, batchWorld));

        const aloneRows = rowsFor(spec, aloneWorld);
        const order = aloneRows.map((_row, i) => i).sort((a, b) => aloneRows[a].agentId.localeCompare(aloneRows[b].agentId) || a - b);
        const alone = new Array(aloneRows.length);
        for (const i of order) [alone[i]] = await issueGrantBatch(query, config, [aloneRows[i]]);

        // No signing kid given: no key is reported revoked.
        expect([...batched, ...alone].filter((outcome) => outcome.is_key_revoked !== false)).toEqual([]);
        const decisions = (outcomes: typeof batched) => outcomes.map(({ ord: _ord, is_key_revoked: _isKeyRevoked, ...decision }) => decision);
        const expected = model(spec);
        expect(decisions(alone)).toEqual(expected.decisions);
        expect(decisions(batched)).toEqual(expected.decisions);
        const state = await stateOf(batchWorld);
        expect(state).toEqual(await stateOf(aloneWorld));
        expect(state.windows).toEqual(expected.windows);
        expect(state.quotas).toEqual(expected.quotas);
        expect(state.orgQuotas).toEqual(expected.orgQuotas);
        expect(state.tokens).toHaveLength(expected.decisions.filter((decision) => decision.issued === 1).length);
      }),
      { ...SEED, numRuns: 150 },
    );
  }, 120_000);

  it('says, in the same statement, whether the key about to sign the batch has been revoked', async () => {
    const spec = { orgs: [{ status: 'active', limit: null, quotaCount: 0 }], agents: [{ org: 0, status: 'active', scopes: [], rateCount: 0, quotaCount: 0 }], rateLimit: 0, monthlyLimit: 0, grants: [] } as unknown as Case;
    const world = await buildWorld(spec);
    const row = (jti: string) => ({
      agentId: world.agentIds[0], credentialId: null, trustPolicies: null, bindingId: null, partnerRevision: null, usedJti: null, usedJtiExp: null, scope: '', windowStart: 0, month: '2026-11', jti, grantType: 'client_credentials',
      issuedAt: 0, expiresAt: 900, auditType: 'token.issued', auditActor: 'test', auditData: JSON.stringify({ jti }),
    });
    const config = { rateLimitPerMinute: 0, monthlyTokenLimit: 0 } as Config;
    const knex = database().knex;
    await knex('signing_keys').insert([
      { kid: 'kid-live', alg: 'RS256', public_jwk: {} },
      { kid: 'kid-revoked', alg: 'RS256', public_jwk: {}, retired_at: new Date(), revoked_at: new Date() },
    ]);
    try {
      const [live] = await issueGrantBatch(query, config, [row(crypto.randomUUID())], 'kid-live');
      const [revoked] = await issueGrantBatch(query, config, [row(crypto.randomUUID())], 'kid-revoked');
      expect([live, revoked].map((outcome) => [outcome.issued, outcome.is_key_revoked])).toEqual([[1, false], [1, true]]);
    } finally {
      await knex('signing_keys').whereIn('kid', ['kid-live', 'kid-revoked']).delete();
    }
  });

  it('returns nothing for an empty batch', async () => {
    expect(await issueGrantBatch(query, { rateLimitPerMinute: 5, monthlyTokenLimit: 5 } as Config, [])).toEqual([]);
  });
});
