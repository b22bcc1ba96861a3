import { UnexpectedResponseError } from '../../lib/errors.js';
import { postWithIdToken, postWithRetries, readJsonObject, type IdpClient } from '../../lib/idp-client.js';

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
  const body = readJsonObject(answer);
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new UnexpectedResponseError(answer.url, answer.status, 'no access_token in the body');
  }
  const expiresAt = readExpiresAt(body, client.now());
  if (expiresAt === undefined) {
    throw new UnexpectedResponseError(answer.url, answer.status, 'neither expires_at nor expires_in in the body');
  }
  return { accessToken: body.access_token, expiresAt, scope: typeof body.scope === 'string' ? body.scope : '' };
}

/** `expires_at` as ISO 8601 whether sent as a date string or Unix seconds; else from `expires_in`. */
function readExpiresAt(body: Record<string, unknown>, nowMs: number): string | undefined {
  const { expires_at: expiresAt, expires_in: expiresIn } = body;
  if (typeof expiresAt === 'string' && !Number.isNaN(Date.parse(expiresAt))) {
    return new Date(expiresAt).toISOString();
  }
  if (typeof expiresAt === 'number' && Number.isFinite(expiresAt)) return new Date(expiresAt * 1000).toISOString();
  if (typeof expiresIn === 'number' && Number.isFinite(expiresIn)) return new Date(nowMs + expiresIn * 1000).toISOString();
  return undefined;
}

/** RFC 7009 revocation of our own token, authenticated by that token. */
export async function revokeAccessToken(client: IdpClient, accessToken: string): Promise<void> {
  await postWithRetries(client, '/api/v1/token/revoke', async () => ({
    contentType: 'application/x-www-form-urlencoded',
    body: new URLSearchParams({ token: accessToken }).toString(),
    headers: { Authorization: `Bearer ${accessToken}` },
  }));
}
