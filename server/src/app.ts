/** createApp(deps): the middleware order and the routers, nothing else. */
import Koa, { type Context } from 'koa';
import Router from '@koa/router';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Clock } from './clock.js';
import type { Config } from './config.js';
import { agentRoutes } from './agents/agent-routes.js';
import { auditRoutes } from './audit/audit-routes.js';
import { consoleRoutes } from './http/console-assets.js';
import { countingRefusals, observabilityRoutes, observeRequests, type Metrics } from './http/observability.js';
import { endpoint, renderErrors } from './http/render-errors.js';
import { wellKnownRoutes } from './keys/well-known-routes.js';
import { keyRoutes } from './keys/key-routes.js';
import { SigningKeyService } from './keys/signing-key-service.js';
import type { SigningKeys } from './keys/signing-keys.js';
import type { AccessTokens } from './oauth/access-tokens.js';
import { createClientCredentialsGrant } from './oauth/client-credentials-grant.js';
import type { ClientDirectory } from './oauth/client-directory.js';
import { introspectionEndpoint } from './oauth/introspection-endpoint.js';
import { revocationEndpoint } from './oauth/revocation-endpoint.js';
import { tokenEndpoint } from './oauth/token-endpoint.js';
import { TokenService } from './oauth/token-service.js';
import { federationRoutes } from './federation/federation-routes.js';
import { exchangeEndpoint } from './github/exchange-endpoint.js';
import { createGitHubExchange } from './github/exchange-service.js';
import type { GitHubGateDeps } from './github/id-token-gate.js';
import type { GitHubJwks } from './github/jwks-cache.js';
import { registerEndpoint } from './github/register-endpoint.js';
import { createGitHubRegistration } from './github/registration-service.js';
import { trustPolicyRoutes } from './github/trust-policy-routes.js';
import { openApiRoutes } from './openapi/openapi-routes.js';
import { createFederatedGrants } from './federation/federated-grants.js';
import { evaluationRoutes, onlyPostToEvaluate } from './federation/evaluation-routes.js';
import { EvaluationService } from './federation/evaluation-service.js';
import { EgressRefused, type EgressFetch } from './egress/egress-guard.js';
import { PartnerKeys } from './federation/partner-keys.js';
import type { KeyRing } from './keys/key-encryption.js';
import { WebhookService } from './webhooks/webhook-service.js';
import { onlyGetEventTypes, webhookRoutes } from './webhooks/webhook-routes.js';
import { organizationRoutes } from './organizations/organization-routes.js';
import { OrganizationService } from './organizations/organization-service.js';
import type { UsageRefusals } from './organizations/usage-refusals.js';
import { createOperatorServices } from './services.js';
import { statsRoutes } from './stats/stats-routes.js';
import { StatsService } from './stats/stats-service.js';
import { pingDatabase } from './storage/database.js';
import type { RunPrepared } from './storage/prepared.js';

export interface AppDeps {
  readonly config: Config;
  readonly knex: Knex;
  readonly logger: Logger;
  readonly keys: SigningKeys;
  readonly tokens: AccessTokens;
  readonly clients: ClientDirectory;
  readonly metrics: Metrics;
  readonly githubJwks: GitHubJwks;
  /** Prepared statements of the hot paths. */
  readonly query: RunPrepared;
  /** The time source of every decision that depends on time. */
  readonly clock: Clock;
  /** Refused grants per organization, for usage (optional: tests that build an app by hand). */
  readonly refusals?: UsageRefusals;
  /** Outbound requests through the egress guard (federation partners' keys, webhook URLs); none when absent. */
  readonly egress?: EgressFetch;
  /** Seals webhook secrets at rest (key-encryption key). */
  readonly keyRing: KeyRing;
}

/** Set by the server on shutdown: every answer from then on tells its client to close the connection. */
export interface Lifecycle {
  draining: boolean;
}

const GRANT = { family: 'oauth', isNoStore: true } as const;
const TOKEN_MANAGEMENT = { family: 'api', isNoStore: true } as const;

/** Without an egress guard (an app built by hand), partners' keys are only their inline ones and no webhook URL is accepted. */
const refuseOutbound = async (): Promise<never> => {
  throw new EgressRefused('url', 'outbound requests are not configured');
};

export function createApp(deps: AppDeps, lifecycle: Lifecycle = { draining: false }): Koa {
  const { config, knex, logger, keys, tokens, clients, metrics, githubJwks, query, clock } = deps;
  const { agents, trustPolicies, audit, federation } = createOperatorServices(knex, clock);
  const flushRefusals = deps.refusals && (() => deps.refusals!.flush());
  const organizations = new OrganizationService({ knex, clock, flushRefusals });
  const tokenService = new TokenService({ config, query, tokens, clock });
  const authenticate = tokenService.authenticate;
  const gitHubDeps: GitHubGateDeps = {
    knex,
    config,
    jwks: githubJwks,
    query,
    clock,
    onUnverifiedRefusal: (endpoint, reason) => metrics.oidcUnverifiedRefusals.inc({ endpoint, reason }),
  };

  const partnerKeys = new PartnerKeys({ fetchJson: deps.egress?.fetchJson ?? refuseOutbound, now: () => clock.now() });
  const webhooks = new WebhookService({ knex, clock, keyRing: deps.keyRing, egress: { checkUrl: deps.egress?.checkUrl ?? refuseOutbound } });
  const grantFederated = createFederatedGrants({
    knex,
    query,
    tokens,
    config,
    clock,
    keys: partnerKeys,
    onUnverifiedRefusal: (endpoint, reason) => metrics.oidcUnverifiedRefusals.inc({ endpoint, reason }),
  });

  const evaluations = new EvaluationService({
    knex,
    clock,
    partnerKeys,
    githubJwks,
    githubIssuer: config.githubOidcIssuer,
    oidcAudience: config.oidcAudience,
  });

  const app = new Koa();
  app.silent = true;

  // Requests accepted before a shutdown (even half uploaded) complete; their keep-alive
  // connections close after the answer instead of being cut under the next request.
  app.use(async (ctx, next) => {
    try {
      await next();
    } finally {
      if (lifecycle.draining) ctx.set('Connection', 'close');
    }
  });

  app.use(observeRequests(logger, metrics));
  app.use(renderErrors(logger));
  app.use(async (ctx, next) => {
    ctx.set('X-Content-Type-Options', 'nosniff');
    await next();
  });

  // The hot endpoints, also reached directly by exact method and path ahead of the
  // routers (which try every router's patterns in turn); any other spelling of the path,
  // a trailing slash say, goes through the routers to the same handler. Each says which
  // error family it answers in.
  const endpoints: [method: 'POST', path: string, handler: (ctx: Context) => Promise<void>][] = [
    ['POST', '/api/v1/token', endpoint(GRANT, tokenEndpoint(createClientCredentialsGrant({ clients, tokens, query, config, clock }), grantFederated))],
    ['POST', '/api/v1/token/introspect', endpoint(TOKEN_MANAGEMENT, introspectionEndpoint(tokenService))],
    ['POST', '/api/v1/token/revoke', endpoint(TOKEN_MANAGEMENT, revocationEndpoint(tokenService))],
    ['POST', '/api/v1/oidc/token', endpoint(GRANT, countingRefusals(metrics.oidcRefusals, 'exchange', exchangeEndpoint(createGitHubExchange({ ...gitHubDeps, tokens }))))],
    ['POST', '/api/v1/oidc/register', endpoint(GRANT, countingRefusals(metrics.oidcRefusals, 'register', registerEndpoint(createGitHubRegistration(gitHubDeps))))],
  ];
  const direct = new Map(endpoints.map(([method, path, handler]) => [`${method} ${path}`, handler]));
  app.use((ctx, next) => {
    const handler = direct.get(`${ctx.method} ${ctx.path}`);
    if (!handler) return next();
    // What @koa/router would record: the metrics label.
    (ctx as Context & { _matchedRoute?: string })._matchedRoute = ctx.path;
    return handler(ctx);
  });
  const endpointRouter = new Router();
  for (const [, path, handler] of endpoints) endpointRouter.post(path, handler);

  app.use(onlyPostToEvaluate);
  app.use(onlyGetEventTypes);
  const routers = [
    endpointRouter,
    // Before the trust-policy routes, whose /:id would answer POST …/evaluate with 405.
    evaluationRoutes(evaluations, authenticate),
    trustPolicyRoutes(trustPolicies, authenticate),
    agentRoutes(agents, authenticate),
    organizationRoutes(organizations, authenticate),
    federationRoutes(federation, authenticate),
    webhookRoutes(webhooks, authenticate),
    auditRoutes(audit, authenticate),
    statsRoutes(new StatsService({ knex, clock, flushRefusals }), authenticate),
    keyRoutes(new SigningKeyService({ knex, clock, keyRing: () => deps.keyRing }), authenticate),
    wellKnownRoutes(config, keys),
    observabilityRoutes(() => pingDatabase(knex), metrics),
    openApiRoutes(config.publicUrl),
    consoleRoutes(),
  ];
  for (const router of routers) {
    app.use(router.routes());
    app.use(router.allowedMethods());
  }
  return app;
}
