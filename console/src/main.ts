/**
 * The console's entry point: the sign-in page, the frame (navigation, who is signed in,
 * sign-out) and the hash router (`#/agents/…`) that draws one page at a time into <main>.
 */
import { h, field, replaceChildren } from './dom.js';
import { endSession, session, signInWithCredentials, signOut, startSession, takeTokenFromFragment, whenSessionEnds } from './session.js';
import { errorRegion, has, heading, messageOf, onSubmit } from './ui.js';
import { agentDetailPage, agentsPage } from './pages/agents.js';
import { auditPage } from './pages/audit.js';
import { federationPage } from './pages/federation.js';
import { keysPage } from './pages/keys.js';
import { organizationsPage } from './pages/organizations.js';
import { overviewPage } from './pages/overview.js';
import { policiesPage } from './pages/policies.js';
import { webhookDetailPage, webhooksPage } from './pages/webhooks.js';

type PageRenderer = (main: HTMLElement, id?: string) => Promise<void>;

interface Route {
  readonly path: string;
  readonly label: string;
  /** Shown in the navigation only when the token holds this scope (the API decides anyway). */
  readonly scope?: string;
  readonly render: PageRenderer;
  readonly detail?: PageRenderer;
}

const ROUTES: readonly Route[] = [
  { path: '', label: 'Overview', render: overviewPage },
  { path: 'agents', label: 'Agents', scope: 'agents:read', render: agentsPage, detail: agentDetailPage },
  { path: 'policies', label: 'Trust policies', scope: 'agents:read', render: policiesPage },
  { path: 'federation', label: 'Federation', scope: 'agents:read', render: federationPage },
  { path: 'orgs', label: 'Organizations', scope: 'admin:orgs', render: organizationsPage },
  { path: 'webhooks', label: 'Webhooks', scope: 'webhooks:read', render: webhooksPage, detail: webhookDetailPage },
  { path: 'audit', label: 'Audit log', scope: 'audit:read', render: auditPage },
  { path: 'keys', label: 'Signing keys', scope: 'audit:read', render: keysPage },
];

const app = document.getElementById('app')!;
let signOutNotice = '';

/** A path segment of the hash, or '' for one that does not decode (`%E0`): the page then says what it did not find. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return '';
  }
}

function currentRoute(): { route: Route; id?: string } {
  const [path = '', id] = window.location.hash.replace(/^#\/?/, '').split('/').map(decodeSegment);
  const route = ROUTES.find((candidate) => candidate.path === path) ?? ROUTES[0]!;
  return { route, id: id || undefined };
}

function signInPage(notice: string): void {
  document.title = 'Sign in · SentryAgent IdP console';
  const errors = errorRegion();
  // Not offered to a password manager: the secret is traded for a token and forgotten.
  const clientId = h('input', { name: 'client_id', autocomplete: 'off', required: true, spellcheck: 'false' });
  const clientSecret = h('input', { name: 'client_secret', type: 'password', autocomplete: 'off', required: true });
  const form = h('form', { class: 'card', 'aria-labelledby': 'credentials-title' },
    h('h2', { id: 'credentials-title' }, 'With client credentials'),
    field('Client ID', clientId),
    field('Client secret', clientSecret, 'Traded at /api/v1/token for a short-lived token; the secret is then forgotten.'),
    errors,
    h('button', { type: 'submit', class: 'primary' }, 'Sign in'),
  );
  onSubmit(form, errors, async () => {
    await signInWithCredentials(clientId.value.trim(), clientSecret.value);
    clientSecret.value = '';
    renderFrame();
  });
  replaceChildren(app,
    h('main', { id: 'main', class: 'sign-in' },
      heading('SentryAgent IdP console'),
      notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
      h('section', { class: 'card', 'aria-labelledby': 'link-title' },
        h('h2', { id: 'link-title' }, 'With a sign-in link'),
        h('p', {}, 'On the server, run ', h('code', {}, 'sentryagent-idp console'), ' and open the link it prints. The link holds a token for 15 minutes; nothing is stored in this browser, so a reload asks you to sign in again.'),
      ),
      form,
    ),
  );
  app.querySelector<HTMLElement>('h1')?.focus();
}

function navigation(active: Route): HTMLElement {
  const links = ROUTES.filter((route) => !route.scope || has(route.scope)).map((route) =>
    h('li', {}, h('a', { href: `#/${route.path}`, 'aria-current': route === active ? 'page' : null }, route.label)),
  );
  return h('nav', { 'aria-label': 'Console' }, h('ul', {}, links));
}

function renderFrame(): void {
  const signedIn = session();
  if (!signedIn) return signInPage(signOutNotice);
  const { route, id } = currentRoute();
  const main = h('main', { id: 'main', tabindex: -1 });
  const signOutErrors = errorRegion();
  const signOutButton = h('button', { type: 'button', class: 'sign-out' }, 'Sign out');
  signOutButton.addEventListener('click', async () => {
    signOutButton.disabled = true;
    try {
      await signOut();
      signOutNotice = 'Signed out: the token has been revoked.';
      renderFrame();
    } catch (error) {
      // The server could not revoke it: say so; the token is forgotten here all the same.
      signOutNotice = `Signed out of this page, but the token could not be revoked: ${messageOf(error)} It expires by itself.`;
      renderFrame();
    }
  });
  const expires = new Date(signedIn.claims.exp * 1000).toISOString().slice(11, 16);
  replaceChildren(app,
    // The hash is the router's: the skip link moves the focus itself.
    h('a', { href: '#main', class: 'skip-link', onClick: (event: Event) => (event.preventDefault(), main.focus()) }, 'Skip to content'),
    h('header', { class: 'top' },
      h('p', { class: 'brand' }, 'SentryAgent IdP'),
      h('p', { class: 'who' }, 'Agent ', h('code', {}, signedIn.claims.sub), ` · token valid until ${expires} UTC`),
      signOutButton,
      h('p', { id: 'status', role: 'status', class: 'visually-hidden' }),
    ),
    signOutErrors,
    navigation(route),
    main,
  );
  const render = id && route.detail ? route.detail : route.render;
  document.title = `${route.label} · SentryAgent IdP console`;
  const loading = h('p', { class: 'loading', role: 'status' }, 'Loading…');
  main.append(loading);
  render(main, id)
    .catch((error) => {
      const errors = errorRegion();
      errors.show(error);
      if (!main.querySelector('h1')) main.prepend(heading(route.label));
      main.append(errors);
    })
    .finally(() => {
      loading.remove();
      (main.querySelector<HTMLElement>('h1') ?? main).focus();
    });
}

// A failure no page caught is still said in words, never left as a half-drawn page.
window.addEventListener('unhandledrejection', (event) => {
  const errors = errorRegion();
  errors.show(event.reason);
  (document.querySelector('main') ?? app).prepend(errors);
});

whenSessionEnds((reason) => {
  signOutNotice = reason;
  renderFrame();
});
window.addEventListener('hashchange', () => {
  if (!window.location.hash.startsWith('#token=')) return renderFrame();
  if (!session()) return boot();
  // A link followed while signed in does not swap the session for another agent's.
  takeTokenFromFragment();
  const errors = errorRegion();
  errors.show(new Error('You are already signed in. To use another sign-in link, sign out first.'));
  document.querySelector('main')?.prepend(errors);
});

function boot(): void {
  const token = takeTokenFromFragment();
  if (token) {
    try {
      startSession(token);
    } catch (error) {
      endSession(messageOf(error));
      return;
    }
  }
  renderFrame();
}

boot();
