/**
 * What a client may send to create a trust policy: one schema, and one parse, for the API
 * and the CLI, so that both give the same answer to the same invalid policy.
 */
import { z } from 'zod';
import { KNOWN_SCOPES } from '../authorization/scopes.js';
import { exactText, parseWith } from '../http/validation.js';
import type { NewTrustPolicy } from './trust-policy-store.js';

// GitHub's rules: owners are 1–39 alphanumerics or single hyphens; repository names 1–100 of [A-Za-z0-9._-].
const REPOSITORY = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\/[A-Za-z0-9._-]{1,100}$/;
// A branch or tag name, not a ref (`main`, `release/v1`, never `refs/heads/main`), by git's
// rules for ref names; `*` (within a path segment) and `**` (across) make it a glob, and no
// other character is special. Three stars in a row mean nothing more than two: refused.
const REF_NAME = /^(?!refs\/)(?!\/)(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\*\*\*)[^\s~^:?[\\\u0000-\u001f\u007f]{1,255}(?<![/.])$/;
const WORKFLOW_REF = /^[A-Za-z0-9-]+\/[A-Za-z0-9._-]+\/[^\s@]+@[^\s]+$/;
const WORKFLOW_REF_HINT = 'must look like owner/repo/.github/workflows/file.yml@refs/heads/main';
// GitHub's ids are numbers; JSON may carry them as numbers or strings, a command line only as strings.
const NUMERIC_ID = z
  .union([z.string().regex(/^[1-9]\d{0,19}$/, 'must be a positive whole number'), z.number().int().positive().max(Number.MAX_SAFE_INTEGER)])
  .transform(String);
const PRIVILEGED_EVENTS = ['pull_request_target', 'workflow_run', 'issue_comment'] as const;

const trustPolicyInput = z
  .strictObject({
    provider: z.literal('github'),
    repository: z.string().regex(REPOSITORY, 'must be owner/name'),
    agentId: z.uuid().optional(),
    // The organization of a registration policy (a platform admin:orgs caller's choice); a policy for an agent is in the agent's.
    orgId: z.uuid().optional(),
    branch: exactText(255).regex(REF_NAME, 'must be a branch name or glob such as main or release/* (not a ref)').optional(),
    tag: exactText(255).regex(REF_NAME, 'must be a tag name or glob such as v1.2.0 or v* (not a ref)').optional(),
    environment: exactText(255).optional(),
    workflowRef: exactText(1024).regex(WORKFLOW_REF, WORKFLOW_REF_HINT).optional(),
    jobWorkflowRef: exactText(1024).regex(WORKFLOW_REF, WORKFLOW_REF_HINT).optional(),
    repositoryId: NUMERIC_ID.optional(),
    repositoryOwnerId: NUMERIC_ID.optional(),
    allowedEvents: z.array(z.enum(PRIVILEGED_EVENTS)).max(PRIVILEGED_EVENTS.length).optional(),
    scopes: z.array(z.enum(KNOWN_SCOPES)).max(KNOWN_SCOPES.length).optional(),
  })
  .refine((policy) => policy.branch === undefined || policy.tag === undefined, {
    path: ['tag'],
    message: 'a policy names a branch or a tag, not both',
  })
  // A registration policy decides what every agent registered under it may hold: it says so.
  .refine((policy) => policy.agentId !== undefined || policy.scopes !== undefined, {
    path: ['scopes'],
    message: 'a registration policy (one without agentId) must name its scopes',
  });

export type TrustPolicyInput = Omit<NewTrustPolicy, 'orgId'> & { readonly orgId?: string };

/** The policy to store, or VALIDATION_ERROR naming the first problem. */
export function parseTrustPolicyInput(value: unknown): TrustPolicyInput {
  const parsed = parseWith(trustPolicyInput, value, 'The trust policy');
  return {
    ...parsed,
    agentId: parsed.agentId?.toLowerCase() ?? null,
    orgId: parsed.orgId?.toLowerCase(),
    allowedEvents: [...new Set(parsed.allowedEvents ?? [])],
    scopes: parsed.scopes ? [...new Set(parsed.scopes)] : null,
  };
}
