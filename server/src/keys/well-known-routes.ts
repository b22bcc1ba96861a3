/** /.well-known/jwks.json and RFC 8414 authorization-server metadata. */
import Router from '@koa/router';
import type { Config } from '../config.js';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import type { SigningKeys } from './signing-keys.js';

export function wellKnownRoutes(config: Config, keys: SigningKeys): Router {
  const router = new Router({ prefix: '/.well-known' });
  const api = `${config.publicUrl}/api/v1`;
  const metadata = Object.freeze({
    issuer: config.publicUrl,
    token_endpoint: `${api}/token`,
    jwks_uri: `${config.publicUrl}/.well-known/jwks.json`,
    scopes_supported: KNOWN_SCOPES,
    response_types_supported: [],
    grant_types_supported: ['client_credentials', 'urn:ietf:params:oauth:grant-type:token-exchange', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
    introspection_endpoint: `${api}/token/introspect`,
    introspection_endpoint_auth_methods_supported: ['bearer'],
    revocation_endpoint: `${api}/token/revoke`,
    revocation_endpoint_auth_methods_supported: ['bearer'],
    service_documentation: `${config.publicUrl}/api/v1/openapi.json`,
  });

  router.get('/oauth-authorization-server', (ctx) => {
    ctx.set('Cache-Control', 'public, max-age=300');
    ctx.body = metadata;
  });

  router.get('/jwks.json', async (ctx) => {
    // Short: a rotated-in key must reach verifiers well before tokens signed by it do.
    ctx.set('Cache-Control', 'public, max-age=60');
    ctx.body = await keys.jwks();
  });

  return router;
}
