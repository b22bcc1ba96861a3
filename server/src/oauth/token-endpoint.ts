/** POST /api/v1/token: the client-credentials grant (RFC 6749 §4.4), per seed 002. */
import type { Context } from 'koa';
import { readForm } from '../http/body.js';
import { invalidClient, invalidRequest, OAuthError, unauthorizedClient, unsupportedGrantType } from '../http/errors.js';
import { setRateLimitHeaders } from '../http/rate-limit.js';
import { isUuid } from '../config.js';
import type { ClientDirectory } from '../agents/client-directory.js';
import { hashClientSecret, matchCredential, type ClientForAuthentication } from '../agents/credential-store.js';
import { GrantGateClosed, type AccessTokens, type IssuedToken } from './access-tokens.js';
import { readClientCredentials, type PresentedClient } from './client-authentication.js';
import { grantableScopes, scopeNotAvailable } from './grantable-scopes.js';

type ClientDecision = { readonly error: OAuthError } | { readonly credentialId: string; readonly scopes: string[] };

/** Pure: what the token endpoint answers this client, from what is known of it. */
export function decideClientGrant(
  client: ClientForAuthentication | undefined,
  presented: Pick<PresentedClient, 'usedBasicAuth'> & { readonly secretHash: Buffer },
  requestedScope: string | undefined,
): ClientDecision {
  const credential = matchCredential(client, presented.secretHash);
  if (!client || !credential) return { error: invalidClient(presented.usedBasicAuth) };
  if (client.status !== 'active') return { error: unauthorizedClient('Agent is currently suspended and cannot obtain tokens.') };
  const scopes = grantableScopes(requestedScope, client.scopes);
  if (typeof scopes === 'string') return { error: scopeNotAvailable(scopes) };
  return { credentialId: credential.credentialId, scopes };
}

export function tokenEndpoint(clients: ClientDirectory, tokens: AccessTokens) {
  return async function issueTokenForClient(ctx: Context): Promise<void> {
    const params = await readForm(ctx);
    if (params.grant_type === undefined || params.grant_type === '') {
      throw invalidRequest("The 'grant_type' parameter is required.");
    }
    if (params.grant_type !== 'client_credentials') throw unsupportedGrantType();
    const presented = readClientCredentials(ctx, params);
    if (!isUuid(presented.clientId)) throw invalidClient(presented.usedBasicAuth);
    const agentId = presented.clientId.toLowerCase();
    const secret = { usedBasicAuth: presented.usedBasicAuth, secretHash: hashClientSecret(presented.clientSecret) };

    // Decide from the cached hint (no hint decides as for an unknown client); a refusal, or
    // a grant the database gate closes, is decided again from a fresh load. So every
    // refusal costs one hash, two decisions and one lookup, whether the client exists or not.
    const hint = clients.cached(agentId);
    for (const isFresh of [false, true]) {
      const client = isFresh ? await clients.load(agentId) : hint;
      const decision = decideClientGrant(client, secret, params.scope);
      if ('error' in decision) {
        if (isFresh) throw decision.error;
        continue;
      }
      try {
        const issued = await tokens.issue({
          agentId,
          credentialId: decision.credentialId,
          grantType: 'client_credentials',
          scopes: decision.scopes,
          audit: { type: 'token.issued', actor: `agent:${agentId}`, data: { credentialId: decision.credentialId } },
        });
        return respondWithToken(ctx, issued);
      } catch (error) {
        if (!(error instanceof GrantGateClosed)) throw error;
      }
    }
    // The gate closed on fresh data too: the credential or agent changed in between.
    throw invalidClient(presented.usedBasicAuth);
  };
}

/** RFC 6749 §5.1: the token response, never cached. */
export function respondWithToken(ctx: Context, issued: IssuedToken, extra: Record<string, unknown> = {}): void {
  setRateLimitHeaders(ctx, issued.rateLimit);
  ctx.set('Cache-Control', 'no-store');
  ctx.set('Pragma', 'no-cache');
  ctx.body = {
    access_token: issued.accessToken,
    token_type: 'Bearer',
    expires_in: issued.expiresIn,
    ...extra,
    scope: issued.scope,
  };
}
