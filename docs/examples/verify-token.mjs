// A downstream service verifying SentryAgent IdP access tokens (README, "Verifying tokens").
import { createRemoteJWKSet, jwtVerify } from 'jose';

export async function tokenVerifier(idpUrl, audience) {
  const metadata = await (await fetch(`${idpUrl}/.well-known/oauth-authorization-server`)).json();
  const keys = createRemoteJWKSet(new URL(metadata.jwks_uri));
  return async function verify(token, scope) {
    const { payload } = await jwtVerify(token, keys, {
      issuer: metadata.issuer, // iss: the IdP's PUBLIC_URL
      audience, // aud: this service, as the client asked with `resource`
      typ: 'at+jwt', // an access token (RFC 9068), nothing else the IdP signs
      algorithms: ['RS256', 'ES256', 'EdDSA'], // exp is checked too
    });
    if (!String(payload.scope ?? '').split(' ').includes(scope)) throw new Error(`the token lacks ${scope}`);
    return payload; // sub: the agent's id
  };
}
