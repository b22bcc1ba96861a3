import * as core from '@actions/core';
import { InputProblems, checkApiUrl, checkBoolean, checkScopes, checkUuid } from '../../lib/inputs.js';
import { readRetryPolicy, type RetryPolicy } from '../../lib/retry.js';

export interface IssueTokenInputs {
  readonly apiUrl: string;
  readonly agentId: string;
  readonly audience: string;
  /** Space-separated; undefined asks for every scope the agent holds. */
  readonly scope?: string;
  readonly revoke: boolean;
  /** Also export the token as SENTRYAGENT_TOKEN to the job's later steps. */
  readonly exportEnv: boolean;
  readonly retryPolicy: RetryPolicy;
  /** Run context, only for naming things in failure messages. */
  readonly repository?: string;
  readonly ref?: string;
}

/** Everything the main step needs, validated at once: a bad input fails before any request. */
export function readInputs(): IssueTokenInputs {
  const problems = new InputProblems();
  const apiUrl = checkApiUrl('api-url', core.getInput('api-url'), problems);
  const agentId = checkUuid('agent-id', core.getInput('agent-id'), problems);
  const scopes = checkScopes('scope', core.getInput('scope'), problems);
  const revoke = checkBoolean('revoke', core.getInput('revoke'), true, problems);
  const exportEnv = checkBoolean('export-env', core.getInput('export-env'), false, problems);
  problems.throwIfAny();
  return Object.freeze({
    apiUrl: apiUrl as string,
    agentId: agentId as string,
    audience: core.getInput('audience') || (apiUrl as string),
    scope: scopes?.join(' '),
    revoke,
    exportEnv,
    retryPolicy: readRetryPolicy(process.env),
    repository: process.env.GITHUB_REPOSITORY || undefined,
    ref: process.env.GITHUB_REF || undefined,
  });
}

export interface PostState {
  /** Empty when there is nothing to revoke: `revoke: false`, or the main step issued no token. */
  readonly token: string;
  readonly apiUrl: string;
  readonly expiresAt: string;
  readonly retryPolicy: RetryPolicy;
}

const REVOCATION_BUDGET_MS = 15_000;

/** What the main step saved for the post step (the runner exports it as STATE_* variables). */
export function readPostState(): PostState {
  return Object.freeze({
    token: core.getState('token'),
    apiUrl: core.getState('api-url'),
    expiresAt: core.getState('expires-at'),
    // A post step runs while the job winds down: a dead IdP should not hold it for a minute.
    retryPolicy: readRetryPolicy(process.env, REVOCATION_BUDGET_MS),
  });
}
