/**
 * The real thing for the end-to-end action tests: a fake GitHub issuer (whose runner
 * endpoint is what ACTIONS_ID_TOKEN_REQUEST_URL points at) and a real IdP trusting it, on
 * a real database. The actions reach the IdP through a proxy that checks every reply
 * against the OpenAPI document (support/documenting-proxy.ts); its URL is the `api-url`.
 * By default the IdP's OIDC_AUDIENCE is that URL, which is what the actions send when
 * `audience` is not given (it defaults to `api-url`).
 */
import { expect } from '@jest/globals';
import { adminToken, bearer, createAgent, form, json, send, type Reply } from '../support/api.js';
import { startDocumentingProxy } from '../support/documenting-proxy.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { loadClaimFixture, type GitHubClaimSet } from '../support/github-claims.js';
import { startTestServer, type TestServer } from '../support/test-server.js';

export interface RealIdp {
  readonly github: FakeGitHubIssuer;
  readonly server: TestServer;
  /** The IdP's base URL as the actions see it (`api-url`): the documenting proxy's. */
  readonly apiUrl: string;
  /** The bootstrap admin's access token. */
  readonly admin: string;
  /** What the runner gives every step of a job with `id-token: write`, plus short retry budgets. */
  runnerEnv(extra?: Record<string, string | undefined>): Record<string, string | undefined>;
  /** Stops everything, then fails if any reply the actions received was not as documented. */
  close(): Promise<void>;
}

/** `audience`: a fixed OIDC_AUDIENCE; omitted: the URL the actions reach the server at. */
export async function startRealIdp(options: { audience?: string } = {}): Promise<RealIdp> {
  const github = await startFakeGitHubIssuer();
  github.setRunnerClaims(loadClaimFixture('push-main'));
  const proxy = await startDocumentingProxy();
  const server = await startTestServer({ env: { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: options.audience ?? proxy.url } });
  proxy.setTarget(server.url);
  const admin = await adminToken(server);
  return {
    github,
    server,
    apiUrl: proxy.url,
    admin,
    runnerEnv: (extra = {}) => ({
      ACTIONS_ID_TOKEN_REQUEST_URL: github.idTokenRequestUrl,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: github.idTokenRequestToken,
      SENTRYAGENT_RETRY_MAX_MS: '8000',
      SENTRYAGENT_RETRY_BASE_MS: '50',
      ...extra,
    }),
    close: async () => {
      await proxy.close();
      await server.stop();
      await github.close();
      expect(proxy.relayed).toBeGreaterThan(0);
      proxy.assertAllDocumented();
    },
  };
}

/** A GitHub claim fixture with the runner variables that go with it. */
export function runnerContext(claims: GitHubClaimSet): Record<string, string> {
  return { GITHUB_REPOSITORY: String(claims.repository), GITHUB_REF: String(claims.ref), GITHUB_EVENT_NAME: String(claims.event_name) };
}

export async function createTrustPolicy(idp: RealIdp, policy: Record<string, unknown>): Promise<Reply> {
  const reply = await send(idp.server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', ...policy }, idp.admin));
  if (reply.status !== 201) throw new Error(`create trust policy failed: ${reply.status} ${reply.text}`);
  return reply;
}

/** An agent created by the admin, with a trust policy for octo-org/octo-repo (plus `policy`). */
export async function createTrustedAgent(
  idp: RealIdp,
  fields: { scopes?: string[]; policy?: Record<string, unknown> } = {},
): Promise<string> {
  const { agentId } = await createAgent(idp.server, idp.admin, { scopes: fields.scopes ?? ['agents:read', 'tokens:read'] });
  await createTrustPolicy(idp, { repository: 'octo-org/octo-repo', agentId, ...fields.policy });
  return agentId;
}

/** RFC 7662 introspection by the admin. */
export async function introspect(idp: RealIdp, token: string): Promise<Record<string, unknown>> {
  const reply = await send(idp.server, '/api/v1/token/introspect', bearer(idp.admin, form({ token })));
  if (reply.status !== 200) throw new Error(`introspection failed: ${reply.status} ${reply.text}`);
  return reply.body as Record<string, unknown>;
}

/** The claims of a JWT, unverified: for looking at the ID tokens a run was handed. */
export function decodeJwtClaims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
}

/** Masked values that are JWTs whose issuer is the fake GitHub: the ID tokens a run requested. */
export function maskedIdTokens(masks: readonly string[], github: FakeGitHubIssuer): string[] {
  return masks.filter((value) => {
    try {
      return decodeJwtClaims(value).iss === github.issuer;
    } catch {
      return false;
    }
  });
}

/** Resolves once the server has logged, past line `fromLine`, a request answered with `status`. */
export async function waitForLoggedStatus(server: TestServer, status: number, fromLine = 0, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const hasStatus = () =>
    server.logs.slice(fromLine).some((line) => {
      try {
        return (JSON.parse(line) as { status?: unknown }).status === status;
      } catch {
        return false;
      }
    });
  while (!hasStatus()) {
    if (Date.now() > deadline) throw new Error(`the server logged no ${status} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** How many requests the server has logged for `route` (the matched route pattern). */
export function countLoggedRequests(server: TestServer, route: string): number {
  return server.logs.filter((line) => {
    try {
      return (JSON.parse(line) as { route?: unknown }).route === route;
    } catch {
      return false;
    }
  }).length;
}

/** A secret is announced with `::add-mask::` before any other appearance in stdout, and never reaches stderr. */
export function expectMaskedBeforeFirstUse(run: { stdout: string; stderr: string }, secret: string): void {
  const mask = `::add-mask::${secret}`;
  expect(run.stdout).toContain(mask);
  expect(run.stdout.indexOf(secret)).toBe(run.stdout.indexOf(mask) + '::add-mask::'.length);
  expect(run.stderr).not.toContain(secret);
}
