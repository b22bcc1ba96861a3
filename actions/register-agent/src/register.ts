import { postWithIdToken, type IdpClient } from '../../lib/idp-client.js';
import { AGENT_ID, BOOLEAN, readReplyFields } from '../../lib/reply-fields.js';

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
  // Only the fields used are checked; the rest of the agent is neither used nor printed.
  const reply = readReplyFields(answer);
  const agentId = reply.required('agentId', AGENT_ID);
  // `created` is the contract's field; the status (201 vs 200) says the same if it is missing.
  const created = reply.optional('created', BOOLEAN) ?? answer.status === 201;
  return { agentId, created };
}
