/**
 * The admin console in a real Chromium against a real server on the test database: sign
 * in (by link, by client credentials), agents and credentials, trust policies and their
 * evaluation with a token of the test GitHub issuer, the audit log and its chain badge,
 * sign-out revoking the token; and what must never happen: a token surviving a reload, an
 * inline script running, a name rendered as HTML.
 */
import crypto from 'node:crypto';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchBrowser, screenshot } from '../support/browser.js';
import { adminToken, bearer, createAgent, createTenant, form, getToken, json, platformOrgIdOf, send } from '../support/api.js';
import { loadClaimFixture } from '../support/github-claims.js';
import { startFakeGitHubIssuer, type FakeGitHubIssuer } from '../support/fake-github-issuer.js';
import { OPERATOR_CALLER } from '../../server/src/authorization/caller.js';
import { runInProcess } from '../support/cli-process.js';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver.js';
import { ADMIN, startTestServer, type TestServer } from '../support/test-server.js';

// The callbacks given to page.evaluate run in the browser; this file is compiled without the DOM's types.
declare const document: any, window: any, history: any, localStorage: any, sessionStorage: any;

const AUDIENCE = 'https://idp.test/github';

let server: TestServer;
let github: FakeGitHubIssuer;
let browser: Browser;
let admin: string;
let receiver: WebhookReceiver;
const contexts: BrowserContext[] = [];

beforeAll(async () => {
  github = await startFakeGitHubIssuer({ audience: AUDIENCE });
  receiver = await startWebhookReceiver();
  // Webhook URLs on loopback: the test receiver.
  server = await startTestServer({ env: { GITHUB_OIDC_ISSUER: github.issuer, OIDC_AUDIENCE: AUDIENCE, EGRESS_ALLOW_CIDRS: '127.0.0.0/8' } });
  browser = await launchBrowser();
  admin = await adminToken(server);
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
  await github?.close();
  await receiver?.close();
});

afterEach(async () => {
  await Promise.all(contexts.splice(0).map((context) => context.close()));
});

async function newPage(viewport = { width: 1280, height: 900 }): Promise<Page> {
  const context = await browser.newContext({ viewport });
  // Under the test's own timeout, so that a failure names the step that waited.
  context.setDefaultTimeout(8_000);
  contexts.push(context);
  const page = await context.newPage();
  page.on('pageerror', (error) => {
    throw error;
  });
  return page;
}

async function signInWithCredentials(page: Page, clientId = ADMIN.clientId, clientSecret = ADMIN.clientSecret): Promise<void> {
  await page.goto(`${server.url}/console`);
  await page.getByLabel('Client ID').fill(clientId);
  await page.getByLabel('Client secret').fill(clientSecret);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
}

/** The form whose button is named so. */
const formWith = (page: Page, button: string) => page.locator('form', { has: page.getByRole('button', { name: button }) });

/** `sentryagent-idp console`'s link, as the operator runs it, pointed at this test server (its PUBLIC_URL is http://idp.test). */
async function signInLink(): Promise<{ link: string; token: string }> {
  const run = await runInProcess(server, OPERATOR_CALLER, ['console', '--json']);
  expect(run.exitCode).toBe(0);
  const { hash } = new URL(run.json().url);
  return { link: `${server.url}/console${hash}`, token: hash.slice('#token='.length) };
}

async function go(page: Page, linkName: string, heading: string | RegExp = linkName): Promise<void> {
  await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: linkName }).click();
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  await page.locator('.loading').waitFor({ state: 'detached' });
}

const introspect = async (token: string) => (await send(server, '/api/v1/token/introspect', bearer(admin, form({ token })))).body;

describe('the console in a browser', () => {
  it('signs in with client credentials, shows the overview, and holds nothing after a reload', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    await page.getByText('Tokens granted per hour, last 24 hours').waitFor();
    await page.getByText(/Tokens granted in \d{4}-\d{2}/).waitFor();
    await screenshot(page, '01-overview');

    const stored = await page.evaluate(() => ({ local: localStorage.length, session: sessionStorage.length, cookie: document.cookie }));
    expect(stored).toEqual({ local: 0, session: 0, cookie: '' });
    await page.reload();
    await page.getByRole('heading', { level: 2, name: 'With client credentials' }).waitFor();
    expect(await page.getByRole('button', { name: 'Sign out' }).count()).toBe(0);
  });

  it('signs in by the link of `sentryagent-idp console`: the token leaves the address bar at once and never reaches the server', async () => {
    const { link, token } = await signInLink();
    const page = await newPage();
    const requested: string[] = [];
    page.on('request', (request) => requested.push(request.url()));
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    expect(page.url()).toBe(`${server.url}/console`);
    // The entry the link made was replaced: going back leaves the console for the blank page it came from.
    await page.goBack();
    expect(page.url()).toBe('about:blank');
    expect(requested.some((url) => url.includes(token))).toBe(false);
    expect(server.logs.some((line) => line.includes(token))).toBe(false);
  });

  it('refuses a link followed while signed in: nobody swaps your session for theirs', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    const theirs = await createTenant(server, admin, { slug: 'swap-attempt', adminScopes: ['agents:read', 'agents:write'] });
    await page.evaluate((token) => (window.location.hash = `#token=${token}`), theirs.admin);
    await page.getByRole('alert').filter({ hasText: 'You are already signed in' }).waitFor();
    expect(page.url()).not.toContain('token=');
    await page.getByText(`Agent ${ADMIN.clientId}`).waitFor();
  });

  it('refuses a bad link in words', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/console#token=not-a-token`);
    await page.getByText('That is not an access token').waitFor();
    await page.getByRole('heading', { level: 2, name: 'With client credentials' }).waitFor();
  });

  it('creates an agent and a credential whose secret is shown once, suspends, reactivates and decommissions it', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Agents');
    const create = formWith(page, 'Create agent');
    await create.getByLabel('Name', { exact: true }).fill('console-made');
    await create.getByLabel('agents:read').check();
    await create.getByRole('button', { name: 'Create agent' }).click();
    await page.getByRole('heading', { level: 1, name: 'Agent console-made' }).waitFor();
    const agentId = (await page.locator('dl.facts dd code').first().textContent())!;

    await page.getByRole('button', { name: 'Create a credential' }).click();
    const secret = await page.getByRole('textbox', { name: 'Client secret' }).inputValue();
    expect(secret.length).toBeGreaterThan(20);
    await page.getByText('Client secret: shown once.').waitFor();
    await screenshot(page, '03-agent-detail-with-secret');
    const granted = await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: agentId, client_secret: secret }));
    expect(granted.status).toBe(200);
    // Shown once: the list and a second visit have no secret.
    await go(page, 'Agents');
    await page.getByRole('link', { name: 'console-made' }).click();
    await page.getByRole('heading', { level: 1, name: 'Agent console-made' }).waitFor();
    await page.locator('.table-wrap[aria-label="Credentials"]').waitFor();
    expect(await page.locator('.secret-once').count()).toBe(0);
    expect(await page.content()).not.toContain(secret);

    await page.getByRole('button', { name: 'Suspend' }).click();
    await page.locator('.badge', { hasText: 'suspended' }).first().waitFor();
    expect((await introspect(granted.body.access_token)).active).toBe(false);
    await page.getByRole('button', { name: 'Reactivate' }).click();
    await page.locator('.badge', { hasText: 'active' }).first().waitFor();

    // Scopes edited in place.
    const scopes = formWith(page, 'Save scopes');
    await scopes.getByLabel('audit:read').check();
    await scopes.getByRole('button', { name: 'Save scopes' }).click();
    await page.getByRole('heading', { level: 1, name: 'Agent console-made' }).waitFor();
    await page.getByRole('button', { name: 'Save scopes' }).waitFor();
    expect((await send(server, `/api/v1/agents/${agentId}`, bearer(admin))).body.scopes.sort()).toEqual(['agents:read', 'audit:read']);

    // A credential revoked, after its confirmation.
    const credentialId = (await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin))).body.data[0].credentialId;
    await page.getByRole('button', { name: `Revoke credential ${credentialId}` }).click();
    await page.getByRole('dialog', { name: 'Revoke this credential?' }).getByRole('button', { name: 'Revoke credential' }).click();
    await page.locator('.table-wrap[aria-label="Credentials"] .badge', { hasText: 'revoked' }).waitFor();
    expect((await send(server, `/api/v1/agents/${agentId}/credentials`, bearer(admin))).body.data[0].status).toBe('revoked');

    await page.getByRole('button', { name: 'Decommission…' }).click();
    const dialog = page.getByRole('dialog', { name: 'Decommission console-made?' });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    expect((await send(server, `/api/v1/agents/${agentId}`, bearer(admin))).body.status).toBe('active');
    await page.getByRole('button', { name: 'Decommission…' }).click();
    await dialog.getByRole('button', { name: 'Decommission' }).click();
    await page.locator('.badge', { hasText: 'decommissioned' }).first().waitFor();
    expect((await send(server, `/api/v1/agents/${agentId}`, bearer(admin))).body.status).toBe('decommissioned');
  });

  it('creates a trust policy with inline validation and shows which constraint a GitHub ID token fails', async () => {
    const { agentId } = await createAgent(server, admin, { name: 'deployer', scopes: ['agents:read'] });
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Trust policies');
    const create = formWith(page, 'Create trust policy');
    const repository = create.getByLabel('Repository (owner/name)');
    await repository.fill('not a repository');
    await create.getByText('Write it as owner/name').waitFor();
    expect(await repository.getAttribute('aria-invalid')).toBe('true');
    await repository.fill('octo-org/octo-repo');
    expect(await repository.getAttribute('aria-invalid')).toBeNull();
    await create.getByLabel('Agent', { exact: true }).selectOption(agentId);
    await create.getByLabel('Branch (optional)').fill('main');
    await create.getByRole('button', { name: 'Create trust policy' }).click();
    await page.getByRole('region', { name: 'Trust policies' }).getByText('branch=main').waitFor();
    await screenshot(page, '04-trust-policies');

    const evaluate = formWith(page, 'Evaluate');
    await evaluate.getByLabel('GitHub ID token').fill(await github.mintIdToken({ ...loadClaimFixture('push-main'), ref: 'refs/heads/dev' }));
    await evaluate.getByLabel('For agent').selectOption(agentId);
    await evaluate.getByRole('button', { name: 'Evaluate' }).click();
    const result = page.locator('.evaluation');
    await result.getByText('signature verified').waitFor();
    await result.getByText('does not match').waitFor();
    await result.locator('li li strong', { hasText: 'branch' }).waitFor();
    await screenshot(page, '05-trust-policy-evaluation');

    await evaluate.getByLabel('GitHub ID token').fill(await github.mintIdToken());
    await evaluate.getByRole('button', { name: 'Evaluate' }).click();
    await result.getByText('matches', { exact: true }).waitFor();

    // Deleted, after its confirmation.
    await page.getByRole('button', { name: 'Delete the policy for octo-org/octo-repo' }).click();
    await page.getByRole('dialog', { name: 'Delete this trust policy?' }).getByRole('button', { name: 'Delete policy' }).click();
    await page.getByText('No trust policies yet.').waitFor();
    expect((await send(server, '/api/v1/oidc/trust-policies', bearer(admin))).body.data).toEqual([]);
  });

  it('reads the audit log with the chain badge and filters', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Audit log');
    await page.getByText('Audit chain verified').waitFor();
    await page.getByLabel('Event type').fill('token.issued');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.getByRole('region', { name: 'Audit events' }).getByText('token.issued').first().waitFor();
    const types = await page.getByRole('region', { name: 'Audit events' }).locator('tbody tr td:nth-child(3)').allTextContents();
    expect(types.length).toBeGreaterThan(0);
    expect(new Set(types)).toEqual(new Set(['token.issued']));
    await screenshot(page, '06-audit-log');
  });

  it('pages through the audit log', async () => {
    await Promise.all(Array.from({ length: 55 }, () => adminToken(server)));
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Audit log');
    await page.getByLabel('Event type').fill('token.issued');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    const rows = page.getByRole('region', { name: 'Audit events' }).locator('tbody tr');
    await page.getByRole('button', { name: 'Load more' }).waitFor();
    expect(await rows.count()).toBe(50);
    const firstPage = await rows.locator('td:first-child').allTextContents();
    await page.getByRole('button', { name: 'Load more' }).click();
    await page.waitForFunction((count) => document.querySelectorAll('.table-wrap[aria-label="Audit events"] tbody tr').length > count, 50);
    const ids = (await rows.locator('td:first-child').allTextContents()).map(Number);
    expect(ids.slice(0, 50).map(String)).toEqual(firstPage);
    // Newest first, no event twice.
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('creates an organization with a first admin whose secret is shown once, and suspends it', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Organizations');
    const create = formWith(page, 'Create organization');
    await create.getByLabel('Slug').fill('Not A Slug');
    await create.getByText('2 to 63 lower-case letters').first().waitFor();
    await create.getByLabel('Slug').fill('made-in-console');
    await create.getByLabel('Name', { exact: true }).fill('Made in the console');
    await create.getByLabel('Tokens per month (optional)').fill('500');
    await create.getByLabel('First admin agent’s name (optional)').fill('first-admin');
    await create.getByRole('button', { name: 'Create organization' }).click();
    const secret = await page.getByRole('textbox', { name: 'Client secret' }).inputValue();
    const clientId = (await page.locator('.fresh-secret code, section code').filter({ hasText: /^[0-9a-f-]{36}$/ }).first().textContent())!;
    expect((await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }))).status).toBe(200);
    await page.getByRole('button', { name: 'Suspend made-in-console' }).click();
    await page.getByRole('dialog', { name: 'Suspend made-in-console?' }).getByRole('button', { name: 'Suspend' }).click();
    await page.getByRole('button', { name: 'Reactivate made-in-console' }).waitFor();
    expect((await send(server, '/api/v1/token', form({ grant_type: 'client_credentials', client_id: clientId, client_secret: secret }))).status).not.toBe(200);
  });

  it('signs out by revoking the token', async () => {
    const { link, token } = await signInLink();
    const page = await newPage();
    await page.goto(link);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    expect((await introspect(token)).active).toBe(true);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByText('Signed out: the token has been revoked.').waitFor();
    expect((await introspect(token)).active).toBe(false);
  });

  it('shows what the API refuses in words, never a blank page', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    await page.evaluate(() => (window.location.hash = '#/agents/00000000-0000-4000-8000-000000000000'));
    await page.getByRole('alert').filter({ hasText: /not found/i }).waitFor();
  });
});

describe('the console is safe by construction', () => {
  it('is served with a strict Content-Security-Policy that blocks an injected inline script', async () => {
    // Not API: the console's page is not in the OpenAPI document that `send` checks replies against.
    const reply = await fetch(`${server.url}/console`);
    expect(reply.status).toBe(200);
    expect(reply.headers.get('content-security-policy')).toMatch(/script-src 'self';/);
    expect(reply.headers.get('content-security-policy')).toMatch(/frame-ancestors 'none'/);
    expect(reply.headers.get('x-frame-options')).toBe('DENY');

    // An inline script injected into the page on its way (the server's headers kept): the browser refuses to run it.
    const page = await newPage();
    await page.route(`${server.url}/console`, async (route) => {
      const original = await route.fetch();
      const body = (await original.text()).replace('<body>', '<body><script>window.__injected = true</script>');
      await route.fulfill({ response: original, body });
    });
    const violations: string[] = [];
    await page.exposeFunction('reportViolation', (directive: string) => violations.push(directive));
    await page.addInitScript(() => document.addEventListener('securitypolicyviolation', (event: any) => (window as any).reportViolation(event.violatedDirective)));
    await page.goto(`${server.url}/console`);
    await page.getByRole('heading', { level: 2, name: 'With client credentials' }).waitFor();
    expect(await page.evaluate(() => (window as any).__injected)).toBeUndefined();
    await page.waitForFunction(() => true);
    expect(violations).toContain('script-src-elem');

    // Script text written from a string, as an injected bug in the console would: refused by Trusted Types.
    const written = await page.evaluate(() => {
      const script = document.createElement('script');
      try {
        script.textContent = 'window.__written = true';
        document.body.append(script);
        return 'written';
      } catch (error) {
        return String(error);
      }
    });
    expect(written).toMatch(/TrustedScript/);
    expect(await page.evaluate(() => (window as any).__written)).toBeUndefined();
  });

  it('serves its page, scripts and stylesheet from this server only, each with the same headers, revalidated by ETag', async () => {
    const page = await fetch(`${server.url}/console`);
    const html = await page.text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]!);
    expect(assets).toEqual(['/console/console.css', '/console/main.js']);
    for (const [path, type] of [['/console/main.js', 'text/javascript'], ['/console/pages/agents.js', 'text/javascript'], ['/console/console.css', 'text/css']]) {
      const reply = await fetch(server.url + path);
      expect(reply.status).toBe(200);
      expect(reply.headers.get('content-type')).toContain(type);
      expect(reply.headers.get('content-security-policy')).toBe(page.headers.get('content-security-policy'));
      const etag = reply.headers.get('etag')!;
      expect((await fetch(server.url + path, { headers: { 'If-None-Match': etag } })).status).toBe(304);
    }
    expect((await fetch(`${server.url}/console/nothing.js`)).status).toBe(404);
    expect((await fetch(`${server.url}/console/../server/src/main.ts`)).status).toBe(404);
    expect((await fetch(`${server.url}/console`, { method: 'POST' })).status).toBe(405);
  });

  it('renders a name containing <img onerror> as text', async () => {
    const name = '<img src=x onerror="window.__xss=1">';
    await createAgent(server, admin, { name });
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Agents');
    await page.getByRole('link', { name }).waitFor();
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss)).toBeUndefined();
  });
});

/** Every control of the page has a name a screen reader can say, and nothing makes the page scroll sideways. */
async function checkPage(page: Page): Promise<void> {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
      .filter((control: any) => control.labels?.length === 0 && !control.getAttribute('aria-label'))
      .map((control: any) => control.outerHTML),
  );
  expect(unlabelled).toEqual([]);
  const unnamedButtons = await page.evaluate(() => [...document.querySelectorAll('button')].filter((button: any) => !button.textContent?.trim() && !button.getAttribute('aria-label')).length);
  expect(unnamedButtons).toBe(0);
  const widths = await page.evaluate(() => ({ content: document.documentElement.scrollWidth, viewport: window.innerWidth }));
  expect(widths.content).toBeLessThanOrEqual(widths.viewport);
}

describe('every page', () => {
  beforeAll(async () => {
    const orgs = await send(server, '/api/v1/orgs', json('POST', { slug: 'acme-ci', name: 'Acme CI', limits: { monthlyTokens: 10000 } }, admin));
    expect(orgs.status).toBe(201);
    const jwk = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' });
    const partner = await send(server, '/api/v1/federation/partners', json('POST', {
      preset: 'custom', name: 'build-farm', issuer: 'https://ci.example.test', keys: { keys: [{ ...jwk, kid: 'k1', alg: 'ES256' }] }, algorithms: ['ES256'], audiences: ['https://idp.test'], orgIds: [await platformOrgIdOf(server)],
    }, admin));
    expect(partner.status).toBe(201);
    const hook = await send(server, '/api/v1/webhooks', json('POST', { url: receiver.url, eventTypes: ['*'], description: 'ops alerts' }, admin));
    expect(hook.status).toBe(201);
    expect((await send(server, `/api/v1/webhooks/${hook.body.webhookId}/test`, bearer(admin, { method: 'POST' }))).status).toBe(202);
    await receiver.waitFor(1, 15_000);
    // Some traffic for the overview's pictures: grants, and a workflow refused by its policy's branch.
    await Promise.all(Array.from({ length: 12 }, () => adminToken(server)));
    const { agentId } = await createAgent(server, admin, { name: 'release-bot', scopes: ['agents:read'] });
    expect((await send(server, '/api/v1/oidc/trust-policies', json('POST', { provider: 'github', repository: 'octo-org/octo-repo', agentId, branch: 'main' }, admin))).status).toBe(201);
    const fromDev = await github.mintIdToken({ ...loadClaimFixture('push-main'), ref: 'refs/heads/dev' });
    expect((await send(server, '/api/v1/oidc/token', json('POST', { token: fromDev, agentId }))).status).toBe(403);
  });

  it('is labelled for screen readers, readable at 360 px wide, and photographed', async () => {
    const pages: [link: string, heading: string | RegExp][] = [
      ['Overview', 'Overview'],
      ['Agents', 'Agents'],
      ['Trust policies', 'Trust policies'],
      ['Federation', 'Federation'],
      ['Organizations', 'Organizations'],
      ['Webhooks', 'Webhooks'],
      ['Audit log', 'Audit log'],
      ['Signing keys', 'Signing keys'],
    ];
    for (const [width, suffix] of [[1280, 'wide'], [360, 'narrow']] as const) {
      const page = await newPage({ width, height: 800 });
      await signInWithCredentials(page);
      for (const [index, [link, heading]] of pages.entries()) {
        if (width === 360 || link !== 'Overview') await go(page, link, heading);
        await checkPage(page);
        if (link === 'Signing keys') await page.getByRole('region', { name: 'Signing keys' }).locator('.badge', { hasText: 'active' }).waitFor();
        await screenshot(page, `page-${String(index + 1).padStart(2, '0')}-${link.toLowerCase().replace(/ /g, '-')}-${suffix}`);
      }
    }
  });

  it('creates a federation binding, and shows a webhook endpoint’s deliveries and attempts, redelivering one', async () => {
    const { agentId } = await createAgent(server, admin, { name: 'farm-runner', scopes: ['agents:read'] });
    const page = await newPage();
    await signInWithCredentials(page);
    await go(page, 'Federation');
    const create = formWith(page, 'Create binding');
    await create.getByLabel('Agent', { exact: true }).selectOption(agentId);
    await create.getByLabel('Claim').fill('sub');
    await create.getByLabel('Value (for “in”: comma-separated)').fill('pipeline:deploy');
    await create.getByRole('button', { name: 'Create binding' }).click();
    await page.getByRole('region', { name: 'Federation bindings' }).getByText('sub eq pipeline:deploy').waitFor();
    await screenshot(page, '07-federation-binding');

    await go(page, 'Webhooks');
    await page.getByRole('link', { name: receiver.url }).click();
    await page.getByRole('heading', { level: 1, name: `Endpoint ${receiver.url}` }).waitFor();
    const deliveries = page.getByRole('region', { name: 'Deliveries' }).last();
    await deliveries.getByText('webhook.test').first().waitFor();
    await deliveries.getByText('succeeded').first().waitFor();
    await deliveries.locator('summary').first().click();
    await deliveries.getByText(/204 in \d+ ms/).first().waitFor();
    const before = receiver.received.length;
    await deliveries.getByRole('button', { name: /^Redeliver webhook.test/ }).first().click();
    await receiver.waitFor(before + 1, 15_000);
    await screenshot(page, '08-webhook-deliveries');
  });

  it('shows a tenant admin its own organization only: its usage against its monthly limit, and no organizations page', async () => {
    const tenant = await createTenant(server, admin, { slug: 'tenant-view', adminScopes: ['agents:read', 'agents:write', 'audit:read'], limits: { monthlyTokens: 40 } });
    const made = await send(server, `/api/v1/agents/${tenant.adminAgentId}/credentials`, bearer(tenant.admin, { method: 'POST' }));
    await Promise.all(Array.from({ length: 9 }, () => getToken(server, tenant.adminAgentId, made.body.clientSecret)));
    const page = await newPage();
    await page.goto(`${server.url}/console#token=${tenant.admin}`);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    // Two grants before (createTenant's, this token's) and nine now.
    await page.getByText('Tokens granted in').filter({ hasText: '10 of 40 (25 %)' }).waitFor();
    expect(await page.getByRole('meter').first().getAttribute('value')).toBe('10');
    expect(await page.getByRole('navigation', { name: 'Console' }).getByRole('link', { name: 'Organizations' }).count()).toBe(0);
    await page.getByText('Tokens granted per hour, last 24 hours (10 in all)').waitFor();
    // The chain spans every organization: verifying it is the platform's (the API answers a tenant 403).
    await page.getByText('Verification: platform only').waitFor();
    expect(await page.getByRole('alert').filter({ hasText: /./ }).count()).toBe(0);
    await screenshot(page, '00-tenant-overview');
    await go(page, 'Agents');
    const names = await page.getByRole('region', { name: 'Agents' }).locator('tbody a').allTextContents();
    expect(names).toEqual(['tenant-view-admin']);
  });

  it('can be used from the keyboard alone', async () => {
    const page = await newPage();
    await signInWithCredentials(page);
    // A form control by its name, anything else by its text.
    const focused = () => page.evaluate(() => document.activeElement?.getAttribute('name') ?? document.activeElement?.textContent ?? '');
    const tabUntil = async (text: string, key: 'Tab' | 'Shift+Tab') => {
      for (let i = 0; i < 30 && (await focused()) !== text; i += 1) await page.keyboard.press(key);
      expect(await focused()).toBe(text);
    };
    // A page, once drawn, puts the focus on its heading, so a screen reader announces where it is.
    await page.waitForFunction(() => document.activeElement?.tagName === 'H1');
    await tabUntil('Agents', 'Shift+Tab');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { level: 1, name: 'Agents' }).waitFor();
    await page.waitForFunction(() => document.activeElement?.textContent === 'Agents' && document.activeElement?.tagName === 'H1');
    // The skip link, first on the page, leads past the navigation.
    await tabUntil('Skip to content', 'Shift+Tab');
    await page.keyboard.press('Enter');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('main');
    // Forms work from the keyboard: the status filter is reached and changed without a pointer.
    await tabUntil('status', 'Tab');
    await page.keyboard.press('ArrowDown');
    await page.getByRole('link', { name: 'bootstrap-admin' }).waitFor();
  });
});
