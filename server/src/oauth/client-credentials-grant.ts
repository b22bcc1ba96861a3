/** The client-credentials grant (RFC 6749 §4.4), per seed 002: who gets a token, with which scopes. */
import { isUuid } from '../config.js';
import { InvalidClient, UnauthorizedClient, type GrantError } from '../errors.js';
import { GrantGateClosed, type AccessTokens, type IssuedToken } from './access-tokens.js';
import type { ClientDirectory } from './client-directory.js';
import { hashClientSecret, matchCredential, type ClientForAuthentication } from './client-secrets.js';
import type { PresentedClient } from './client-authentication.js';
import { grantableScopes, scopeNotAvailable } from './grantable-scopes.js';

type ClientDecision = { readonly error: GrantError } | { readonly credentialId: string; readonly scopes: string[] };

/** Pure: what the token endpoint answers this client, from what is known of it. */
export function decideClientGrant(
  client: ClientForAuthentication | undefined,
  presented: Pick<PresentedClient, 'usedBasicAuth'> & { readonly secretHash: Buffer },
  requestedScope: string | undefined,
): ClientDecision {
  const credential = matchCredential(client, presented.secretHash);
  if (!client || !credential) return { error: new InvalidClient(presented.usedBasicAuth) };
  if (client.status !== 'active') return { error: new UnauthorizedClient('Agent is currently suspended and cannot obtain tokens.') };
  const scopes = grantableScopes(requestedScope, client.scopes);
  if (typeof scopes === 'string') return { error: scopeNotAvailable(scopes) };
  return { credentialId: credential.credentialId, scopes };
}

export function createClientCredentialsGrant(clients: ClientDirectory, tokens: AccessTokens) {
  return async function grantClientCredentials(presented: PresentedClient, requestedScope: string | undefined): Promise<IssuedToken> {
    if (!isUuid(presented.clientId)) throw new InvalidClient(presented.usedBasicAuth);
    const agentId = presented.clientId.toLowerCase();
    const secret = { usedBasicAuth: presented.usedBasicAuth, secretHash: hashClientSecret(presented.clientSecret) };

    // Decide from the cached hint (no hint decides as for an unknown client); a refusal, or
    // a grant the database gate closes, is decided again from a fresh load. So every
    // refusal costs one hash, two decisions and one lookup, whether the client exists or not.
    const hint = clients.cached(agentId);
    for (const isFresh of [false, true]) {
      const client = isFresh ? await clients.load(agentId) : hint;
      const decision = decideClientGrant(client, secret, requestedScope);
      if ('error' in decision) {
        if (isFresh) throw decision.error;
        continue;
      }
      try {
        return await tokens.issue({
          agentId,
          credentialId: decision.credentialId,
          grantType: 'client_credentials',
          scopes: decision.scopes,
          audit: { type: 'token.issued', actor: `agent:${agentId}`, data: { credentialId: decision.credentialId } },
        });
      } catch (error) {
        if (!(error instanceof GrantGateClosed)) throw error;
      }
    }
    // The gate closed on fresh data too: the credential or agent changed in between.
    throw new InvalidClient(presented.usedBasicAuth);
  };
}
