import { UnexpectedResponseError } from '../../lib/errors.js';
import { postWithIdToken, postWithRetries, type IdpClient } from '../../lib/idp-client.js';
import {
  ACCESS_TOKEN,
  BEARER,
  DATE_TIME,
  LIFETIME_SECONDS,
  SCOPE,
  readReplyFields,
} from '../../lib/reply-fields.js';

export interface IssuedToken {
  readonly accessToken: string;
  /** ISO 8601. */
  readonly expiresAt: string;
  readonly scope: string;
}

/** Trades a GitHub ID token for an access token of `agentId` (CONTRACT: POST /oidc/token). */
export async function issueAccessToken(
  client: IdpClient,
  request: { agentId: string; scope?: string },
  getIdToken: () => Promise<string>,
): Promise<IssuedToken> {
  const answer = await postWithIdToken(client, '/api/v1/oidc/token', getIdToken, (token) => ({
    token,
    agentId: request.agentId,
    ...(request.scope !== undefined && { scope: request.scope }),
  }));
  // RFC 6749 §5.1; the IdP adds expires_at. Every field is checked before any is used.
  const reply = readReplyFields(answer);
  const accessToken = reply.required('access_token', ACCESS_TOKEN);
  reply.required('token_type', BEARER);
  const expiresAt = reply.optional('expires_at', DATE_TIME);
  const expiresInSeconds = reply.optional('expires_in', LIFETIME_SECONDS);
  const scope = reply.optional('scope', SCOPE) ?? '';
  if (expiresAt !== undefined) return { accessToken, expiresAt, scope };
  if (expiresInSeconds !== undefined) {
    return { accessToken, expiresAt: new Date(client.now() + expiresInSeconds * 1000).toISOString(), scope };
  }
  throw new UnexpectedResponseError(answer.url, answer.status, 'neither expires_at nor expires_in in the body');
}

/** RFC 7009 revocation of our own token, authenticated by that token. */
export async function revokeAccessToken(client: IdpClient, accessToken: string): Promise<void> {
  await postWithRetries(client, '/api/v1/token/revoke', async () => ({
    contentType: 'application/x-www-form-urlencoded',
    body: new URLSearchParams({ token: accessToken }).toString(),
    headers: { Authorization: `Bearer ${accessToken}` },
  }));
}
