/**
 * The GitHub exchange over real HTTP: a fake GitHub issuer, a server configured to trust
 * it, the admin's token, and factories for agents, trust policies, ID tokens, exchanges,
 * registrations and audit reads. Shared by the exchange and trust-policy integration tests.
 */
import type { Clock } from '../../server/src/clock.js';
import { randomUUID } from 'node:crypto';
import { startFakeGitHubIssuer, type FakeGitHubIssuer, type MintOptions } from '../support/fake-github-issuer.js';
import { loadClaimFixture, type ClaimFixtureName } from '../support/github-claims.js';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, bearer, json, send, type Reply } from '../support/api.js';

export const AUDIENCE = 'https://idp.test/github';
export const REPOSITORY = 'octo-org/octo-repo';

/** The exact bodies of the refusals (CONTRACT.md, "Trust policies (GitHub)"). */
export const REFUSAL = Object.freeze({
  invalid: { error: 'invalid_grant', error_description: 'The GitHub ID token is invalid.' },
  replayed: { error: 'invalid_grant', error_description: 'The GitHub ID token has already been used.' },
  violation: { error: 'access_denied', error_description: 'Trust policy violation' },
  branch: { error: 'access_denied', error_description: 'Branch not permitted' },
  unavailable: { code: 'SERVICE_UNAVAILABLE', message: 'The GitHub OIDC issuer cannot be reached. Please retry shortly.' },
});

export interface Harness {
  readonly github: FakeGitHubIssuer;
  readonly server: TestServer;
  readonly admin: string;
  /** Another instance on the same database, trusting `issuer` (default: the harness's). */
  startPeer(env?: Record<string, string>, issuer?: FakeGitHubIssuer): Promise<TestServer>;
  stop(): Promise<void>;
}

/** `clock`: the time source of the server and its peers (test/support/clock.ts). */
export async function startHarness(env: Record<string, string> = {}, clock?: Clock): Promise<Harness> {
  const github = await startFakeGitHubIssuer({ audience: AUDIENCE });
  const envFor = (issuer: FakeGitHubIssuer) => ({ GITHUB_OIDC_ISSUER: issuer.issuer, OIDC_AUDIENCE: AUDIENCE });
  const server = await startTestServer({ env: { ...envFor(github), ...env }, clock });
  const peers: TestServer[] = [];
  return {
    github,
    server,
    admin: await adminToken(server),
    startPeer: async (peerEnv = {}, issuer = github) => {
      const peer = await startTestServer({ shareWith: server, env: { ...envFor(issuer), ...peerEnv }, clock });
      peers.push(peer);
      return peer;
    },
    stop: async () => {
      for (const peer of peers) await peer.stop();
      await server.stop();
      await github.close();
    },
  };
}

/** A fixture's claims with overrides; an override of `undefined` leaves the claim out of the token. */
export function mintIdToken(
  issuer: FakeGitHubIssuer,
  fixture: ClaimFixtureName = 'push-main',
  overrides: Record<string, unknown> = {},
  options: MintOptions = {},
): Promise<string> {
  const claims: Record<string, unknown> = { ...loadClaimFixture(fixture), ...overrides };
  const omit = [...(options.omit ?? []), ...Object.keys(claims).filter((name) => claims[name] === undefined)];
  return issuer.mintIdToken(claims, { ...options, omit });
}

export function exchange(server: { url: string }, token: string, agentId: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  return send(server, '/api/v1/oidc/token', json('POST', { token, agentId, ...extra }));
}

export function register(server: { url: string }, token: string, name: string, extra: Record<string, unknown> = {}): Promise<Reply> {
  return send(server, '/api/v1/oidc/register', json('POST', { token, name, ...extra }));
}

export async function createAgent(h: Harness, scopes: string[] = ['agents:read']): Promise<string> {
  const reply = await send(h.server, '/api/v1/agents', json('POST', { name: `agent-${randomUUID().slice(0, 8)}`, scopes }, h.admin));
  if (reply.status !== 201) throw new Error(`create agent failed: ${reply.status} ${reply.text}`);
  return reply.body.agentId;
}

export interface PolicyBody {
  readonly id: string;
  readonly [field: string]: unknown;
}

/** POST /oidc/trust-policies for `octo-org/octo-repo` unless told otherwise; throws unless 201. */
export async function createPolicy(h: Harness, fields: Record<string, unknown>): Promise<PolicyBody> {
  const reply = await send(h.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: REPOSITORY, ...fields }, h.admin));
  if (reply.status !== 201) throw new Error(`create policy failed: ${reply.status} ${reply.text}`);
  return reply.body;
}

/** A new agent and one trust policy for it. */
export async function agentWithPolicy(
  h: Harness,
  fields: Record<string, unknown> = {},
  scopes: string[] = ['agents:read'],
): Promise<{ agentId: string; policy: PolicyBody }> {
  const agentId = await createAgent(h, scopes);
  return { agentId, policy: await createPolicy(h, { agentId, ...fields }) };
}

export async function getPolicy(h: Harness, id: string): Promise<Reply> {
  return send(h.server, `/api/v1/oidc/trust-policies/${id}`, bearer(h.admin));
}

export interface AuditEventBody {
  readonly type: string;
  readonly agentId: string | null;
  readonly actor: string;
  readonly data: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/** Newest first. */
export async function auditEvents(h: Harness, type: string, agentId?: string): Promise<AuditEventBody[]> {
  const query = new URLSearchParams({ type, limit: '100', ...(agentId ? { agentId } : {}) });
  const reply = await send(h.server, `/api/v1/audit?${query}`, bearer(h.admin));
  if (reply.status !== 200) throw new Error(`audit read failed: ${reply.status} ${reply.text}`);
  return reply.body.data;
}

/** Waits, if needed, until the current one-minute rate-limit window has `seconds` left. */
export async function awaitRoomInMinute(seconds = 15): Promise<void> {
  const intoMinute = (Date.now() / 1000) % 60;
  if (intoMinute > 60 - seconds) await new Promise((resolve) => setTimeout(resolve, (61 - intoMinute) * 1000));
}

export const nowSeconds = () => Math.floor(Date.now() / 1000);
