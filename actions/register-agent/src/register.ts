import { UnexpectedResponseError } from '../../lib/errors.js';
import { postWithIdToken, readJsonObject, type IdpClient } from '../../lib/idp-client.js';

export interface RegisteredAgent {
  readonly agentId: string;
  /** False when this repository had already registered an agent of that name. */
  readonly created: boolean;
}

/** Registers (or finds again) the agent `name` for this repository (CONTRACT: POST /oidc/register). */
export async function registerAgent(
  client: IdpClient,
  request: { name: string; description?: string; scopes?: string[] },
  getIdToken: () => Promise<string>,
): Promise<RegisteredAgent> {
  // Re-sending is safe: registering the same name from the same repository returns the same agent.
  const answer = await postWithIdToken(client, '/api/v1/oidc/register', getIdToken, (token) => ({
    token,
    name: request.name,
    ...(request.description !== undefined && { description: request.description }),
    ...(request.scopes !== undefined && { scopes: request.scopes }),
  }));
  const body = readJsonObject(answer);
  if (typeof body.agentId !== 'string' || body.agentId === '') {
    throw new UnexpectedResponseError(answer.url, answer.status, 'no agentId in the body');
  }
  // `created` is the contract's field; the status (201 vs 200) says the same if it is missing.
  const created = typeof body.created === 'boolean' ? body.created : answer.status === 201;
  return { agentId: body.agentId, created };
}
