/**
 * Validation of `policies add`. It mirrors `createPolicyBody` and the agent checks of
 * github/trust-policy-routes.ts, which keeps them private to the route; once they are
 * exported from there (or moved into a trust-policy service), this file should import them.
 */
import type { Knex } from 'knex';
import { z } from 'zod';
import { findAgent } from '../agents/agent-store.js';
import type { NewTrustPolicy } from '../github/trust-policy-store.js';
import { conflict, notFound, validationError } from '../http/errors.js';
import { exactText, parseWith } from '../http/validation.js';
import { KNOWN_SCOPES } from '../oauth/scopes.js';

const REPOSITORY = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9._-]{1,100}$/;
const BRANCH = /^(?!refs\/)(?!\/)(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)[^\s~^:?*[\\\u0000-\u001f\u007f]{1,255}(?<![/.])$/;
const WORKFLOW_REF = /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+\/[^\s@]+@[^\s]+$/;
const NUMERIC_ID = z.string().regex(/^[1-9]\d{0,19}$/, 'must be a positive whole number');
const WORKFLOW_REF_HINT = 'must look like owner/repo/.github/workflows/file.yml@refs/heads/main';

const policyInput = z.strictObject({
  repository: z.string().regex(REPOSITORY, 'must be owner/name'),
  agentId: z.uuid().optional(),
  branch: exactText(255).regex(BRANCH, 'must be a branch name such as main (not a ref)').optional(),
  environment: exactText(255).optional(),
  workflowRef: exactText(1024).regex(WORKFLOW_REF, WORKFLOW_REF_HINT).optional(),
  jobWorkflowRef: exactText(1024).regex(WORKFLOW_REF, WORKFLOW_REF_HINT).optional(),
  repositoryId: NUMERIC_ID.optional(),
  repositoryOwnerId: NUMERIC_ID.optional(),
  allowedEvents: z.array(z.enum(['pull_request_target', 'workflow_run'])).max(2).optional(),
  scopes: z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).optional(),
});

/** The policy to store, or a validation (exit 2), not-found (3) or conflict (4) error. */
export async function checkPolicyInput(knex: Knex, input: Record<string, unknown>): Promise<NewTrustPolicy> {
  const parsed = parseWith(policyInput, input, 'The trust policy');
  const agentId = parsed.agentId?.toLowerCase() ?? null;
  if (agentId) {
    const agent = await findAgent(knex, agentId);
    if (!agent) throw notFound('Agent');
    if (agent.status === 'decommissioned') throw conflict('The agent has been decommissioned.');
    const lacking = parsed.scopes?.filter((scope) => !agent.scopes.includes(scope));
    if (lacking?.length) throw validationError(`The agent does not hold the scope '${lacking[0]}'.`);
  }
  return {
    ...parsed,
    provider: 'github',
    agentId,
    allowedEvents: [...new Set(parsed.allowedEvents ?? [])],
    scopes: parsed.scopes ? [...new Set(parsed.scopes)] : null,
  };
}
