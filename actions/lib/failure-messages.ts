/**
 * The single `::error::` line each failure ends in. Wording for the cases seed 000's
 * troubleshooting section covers is taken from it, so the log and the README agree.
 * Messages name inputs, URLs, the repository and the agent, and never a token.
 */
import {
  IdTokenUnavailableError,
  IdpRefusalError,
  IdpUnreachableError,
  UnexpectedResponseError,
  toSafeLine,
} from './errors.js';
import { InputError } from './inputs.js';

export interface FailureContext {
  readonly action: 'issue-token' | 'register-agent';
  readonly apiUrl?: string;
  readonly audience?: string;
  readonly agentId?: string;
  /** GITHUB_REPOSITORY, `owner/name`. */
  readonly repository?: string;
  /** GITHUB_REF, e.g. `refs/heads/main`. */
  readonly ref?: string;
}

export const ID_TOKEN_HINT =
  "Failed to obtain a GitHub OIDC token. Ensure `id-token: write` is set in the workflow's `permissions` block " +
  '(pull requests from forks receive no ID token).';

export function describeFailure(error: unknown, context: FailureContext): string {
  if (error instanceof InputError) return error.message;
  if (error instanceof IdTokenUnavailableError) return `${ID_TOKEN_HINT} Reason: ${error.reason}`;
  if (error instanceof IdpRefusalError) return describeRefusal(error, context);
  if (error instanceof IdpUnreachableError) return describeUnreachable(error);
  if (error instanceof UnexpectedResponseError) {
    return `${error.message}. Check that \`api-url\` (${context.apiUrl ?? 'unset'}) points at a SentryAgent IdP.`;
  }
  return `Unexpected failure: ${toSafeLine(error instanceof Error ? error.message : String(error))}`;
}

function describeRefusal(error: IdpRefusalError, context: FailureContext): string {
  const { status, errorCode, description } = error;
  if (status === 403 && errorCode === 'access_denied' && description === 'Trust policy violation') {
    return describeMissingTrustPolicy(context);
  }
  if (status === 403 && errorCode === 'access_denied' && description === 'Branch not permitted') {
    return (
      'HTTP 403 — Branch not permitted: A trust policy exists but specifies a branch constraint that does not ' +
      `match the current workflow's branch${context.ref ? ` (${context.ref})` : ''}. Add a policy for the current ` +
      'branch, or remove the branch constraint to allow all branches.'
    );
  }
  if (status === 403 && errorCode === 'access_denied') {
    return (
      `HTTP 403 — ${description ?? 'Access denied'}: the IdP refused this workflow${forAgent(context)}. Check the ` +
      "trust policy's constraints (environment, workflowRef, jobWorkflowRef, allowedEvents) against this run."
    );
  }
  if (status === 403 && errorCode === 'unauthorized_client') {
    return (
      `HTTP 403 — unauthorized_client: ${context.agentId ? `agent ${context.agentId}` : 'the agent'} is suspended ` +
      `or decommissioned and cannot receive tokens${description ? ` (${description})` : ''}. Reactivate it ` +
      `(POST /api/v1/agents/${context.agentId ?? '{agentId}'}/reactivate) or use an active agent.`
    );
  }
  if (status === 400 && errorCode === 'invalid_grant') {
    return (
      `HTTP 400 — invalid_grant: the IdP refused the GitHub ID token${description ? ` (${description})` : ''}. ` +
      `The \`audience\` input (${context.audience ?? 'default: api-url'}) must equal the server's OIDC_AUDIENCE ` +
      "(by default its PUBLIC_URL), and the server's GITHUB_OIDC_ISSUER must be this runner's token issuer."
    );
  }
  if (status === 400 && errorCode === 'invalid_scope') {
    const input = context.action === 'issue-token' ? '`scope`' : '`scopes`';
    // The IdP's description is a sentence of its own ("Requested scope 'x' is not available.").
    const detail = description ? `: ${description.replace(/\.$/, '')}` : '';
    return `HTTP 400 — invalid_scope${detail}. The ${input} input may name only scopes the agent may hold.`;
  }
  if (status === 404) {
    return (
      `HTTP 404 from POST ${error.url}: check that \`api-url\` (${context.apiUrl ?? 'unset'}) is the base URL of ` +
      'a SentryAgent IdP, without /api/v1.'
    );
  }
  if (status >= 300 && status < 400) {
    return (
      `HTTP ${status} from POST ${error.url}${error.location ? ` (redirect to ${error.location})` : ''}: set ` +
      "`api-url` to the IdP's final base URL. Redirects are not followed, so the ID token is never sent elsewhere."
    );
  }
  return `HTTP ${status} — ${errorCode ?? 'refused'}${description ? `: ${description}` : ''} (POST ${error.url}).`;
}

function describeMissingTrustPolicy(context: FailureContext): string {
  const repository = context.repository ?? 'owner/your-repo';
  const policiesUrl = `${context.apiUrl ?? ''}/api/v1/oidc/trust-policies`;
  if (context.action === 'register-agent') {
    return (
      'HTTP 403 — Trust policy violation: No registration trust policy (a policy without `agentId`) exists for ' +
      `this repository (${repository}). Register one using the Prerequisites steps in the register-agent README: ` +
      `POST ${policiesUrl} with {"provider": "github", "repository": "${repository}"}.`
    );
  }
  return (
    'HTTP 403 — Trust policy violation: No trust policy exists for this repository + agent combination ' +
    `(repository ${repository}, agent ${context.agentId ?? 'unknown'}). Register a trust policy using the ` +
    `Prerequisites steps in the issue-token README: POST ${policiesUrl} with {"provider": "github", ` +
    `"repository": "${repository}", "agentId": "${context.agentId ?? '<agent-id>'}"}.`
  );
}

function describeUnreachable(error: IdpUnreachableError): string {
  const hint = /^HTTP 429/.test(error.lastReason)
    ? 'The IdP is rate limiting these requests; re-run the job later.'
    : /^HTTP \d/.test(error.lastReason)
      ? 'The IdP answers but is failing; check its health (/readyz) and logs.'
      : 'Check that `api-url` is right and that the IdP is up and reachable from this runner.';
  return (
    `Could not reach SentryAgent IdP at ${error.url}: ${error.lastReason}, after ${error.attempts} ` +
    `attempt${error.attempts === 1 ? '' : 's'} over ${(error.elapsedMs / 1000).toFixed(1)} s. ${hint}`
  );
}

function forAgent(context: FailureContext): string {
  return context.agentId ? ` for agent ${context.agentId}` : '';
}
