// The reference server for issue 19's target 3: panva's oidc-provider (pinned in
// package.json), issuing client-credentials JWT access tokens, as the bench runs ours.
//
// One client authenticating with client_id and client_secret in the form body (as the
// bench's agent does at /api/v1/token), one resource server (its default, so the request
// needs no `resource`), scope checked against the client's, an access token signed with
// SIGNING_ALG (ES256 or RS256). Its own in-memory adapter: JWT access tokens are not stored,
// so per request this is HTTP, Koa, body parsing, client authentication, scope and signing.
//
// Prints {"port":N,"msg":"listening"} on stdout, the line the bench's startServer waits for.
// Environment: SIGNING_ALG (default ES256), PORT (default 0).
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';
import { REFERENCE_AUDIENCE, REFERENCE_CLIENT, REFERENCE_SCOPE } from './reference.mjs';

const alg = process.env.SIGNING_ALG ?? 'ES256';

/** One private signing key of `alg`, as the JWK set the provider signs with. */
async function signingJwks() {
  const { privateKey } = await generateKeyPair(alg, { extractable: true });
  return { keys: [{ ...(await exportJWK(privateKey)), alg, use: 'sig', kid: `bench-${alg.toLowerCase()}` }] };
}

/** Every client-credentials token is for this one resource server: JWT, signed with `alg`, an hour. */
const resourceServer = { audience: REFERENCE_AUDIENCE, scope: REFERENCE_SCOPE, accessTokenFormat: 'jwt', accessTokenTTL: 3600, jwt: { sign: { alg } } };

async function start() {
  const provider = new Provider('http://127.0.0.1', {
    jwks: await signingJwks(),
    clients: [{ client_id: REFERENCE_CLIENT.id, client_secret: REFERENCE_CLIENT.secret, grant_types: ['client_credentials'], response_types: [], redirect_uris: [], token_endpoint_auth_method: 'client_secret_post', scope: REFERENCE_SCOPE }],
    // ID tokens are never issued here, but the provider checks it holds a key for the default algorithm.
    clientDefaults: { id_token_signed_response_alg: alg },
    scopes: REFERENCE_SCOPE.split(' '),
    cookies: { keys: ['bench-reference-cookie-key-not-for-production'] },
    ttl: { ClientCredentials: 3600 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => REFERENCE_AUDIENCE,
        getResourceServerInfo: () => resourceServer,
        useGrantedResource: () => true,
      },
    },
  });
  const server = provider.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
    process.stdout.write(`${JSON.stringify({ port: server.address().port, alg, msg: 'listening' })}\n`);
  });
}

await start();
