/**
 * The client-credentials grant (RFC 6749 §4.4), per seed 002: who gets a token, with which
 * scopes; and what a failed client authentication costs.
 *
 * Failed authentications of a client_id count in a one-minute window of their own, as
 * large as RATE_LIMIT_PER_MINUTE (oauth/rate-limit-store.ts); past it, further failures
 * are answered 429 instead of 401, for an unknown client exactly as for a wrong secret.
 * The secret is checked first and only a failure is counted, so a correct secret is never
 * refused because of what others tried, and a grant costs no extra database round trip.
 */
import type { Clock } from '../clock.js';
import { isUuid, type Config } from '../config.js';
import { InvalidClient, UnauthorizedClient, type GrantError } from '../errors.js';
import type { RunPrepared } from '../storage/prepared.js';
import { GrantGateClosed, type AccessTokens, type GrantRefusalReason, type IssuedToken } from './access-tokens.js';
import type { ClientDirectory } from './client-directory.js';
import { hashClientSecret, matchCredential, type ClientForAuthentication } from './client-secrets.js';
import type { PresentedClient } from './client-authentication.js';
import { audienceFor } from './audiences.js';
import { grantableScopes, scopeNotAvailable } from './grantable-scopes.js';
import { rateLimitHeaders } from './rate-limit.js';
import { countFailedAuthentication } from './rate-limit-store.js';

type ClientDecision =
  /** `reason`: a refusal of a client that proved who it is, counted in its organization's usage. */
  | { readonly error: GrantError; readonly reason?: GrantRefusalReason }
  | { readonly credentialId: string; readonly scopes: string[] };

/** Pure: what the token endpoint answers this client, from what is known of it. */
export function decideClientGrant(
  client: ClientForAuthentication | undefined,
  presented: Pick<PresentedClient, 'usedBasicAuth'> & { readonly secretHash: Buffer },
  requestedScope: string | undefined,
): ClientDecision {
  const credential = matchCredential(client, presented.secretHash);
  if (!client || !credential) return { error: new InvalidClient(presented.usedBasicAuth) };
  if (client.orgStatus !== 'active') return { error: new UnauthorizedClient(`Organization is ${client.orgStatus}.`), reason: 'org_inactive' };
  if (client.status !== 'active') return { error: new UnauthorizedClient('Agent is currently suspended and cannot obtain tokens.'), reason: 'agent_inactive' };
  const scopes = grantableScopes(requestedScope, client.scopes);
  if (typeof scopes === 'string') return { error: scopeNotAvailable(scopes), reason: 'invalid_scope' };
  return { credentialId: credential.credentialId, scopes };
}

export interface ClientCredentialsGrantDeps {
  readonly clients: ClientDirectory;
  readonly tokens: AccessTokens;
  readonly query: RunPrepared;
  readonly config: Config;
  readonly clock: Clock;
}

export function createClientCredentialsGrant({ clients, tokens, query, config, clock }: ClientCredentialsGrantDeps) {
  /** Counts the failure; 401, or 429 once the client_id's failures are past the limit. */
  async function refuseAuthentication(presented: PresentedClient): Promise<never> {
    const failures = await countFailedAuthentication(query, presented.clientId, config.rateLimitPerMinute, clock.now());
    throw new InvalidClient(presented.usedBasicAuth, failures && rateLimitHeaders(failures));
  }

  return async function grantClientCredentials(
    presented: PresentedClient,
    requestedScope: string | undefined,
    resource?: string,
  ): Promise<IssuedToken> {
    if (presented.clientSecret === undefined || !isUuid(presented.clientId)) return refuseAuthentication(presented);
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
        if (!isFresh) continue;
        if (decision.error instanceof InvalidClient) return refuseAuthentication(presented);
        if (client && decision.reason) tokens.noteRefusal(client.orgId, decision.reason);
        throw decision.error;
      }
      try {
        return await tokens.issue({
          agentId,
          orgId: (client as ClientForAuthentication).orgId,
          credentialId: decision.credentialId,
          grantType: 'client_credentials',
          scopes: decision.scopes,
          audience: audienceFor(config, resource),
          audit: { type: 'token.issued', actor: `agent:${agentId}`, data: { credentialId: decision.credentialId } },
        });
      } catch (error) {
        if (!(error instanceof GrantGateClosed)) throw error;
      }
    }
    // The gate closed on fresh data too: the credential or agent changed in between.
    return refuseAuthentication(presented);
  };
}
