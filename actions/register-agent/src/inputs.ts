import * as core from '@actions/core';
import { InputProblems, checkApiUrl, checkRequired, checkScopes } from '../../lib/inputs.js';
import { readRetryPolicy, type RetryPolicy } from '../../lib/retry.js';

export interface RegisterAgentInputs {
  readonly apiUrl: string;
  readonly name: string;
  readonly description?: string;
  readonly scopes?: string[];
  readonly audience: string;
  readonly retryPolicy: RetryPolicy;
  /** Run context, only for naming things in failure messages. */
  readonly repository?: string;
  readonly ref?: string;
}

/** Every input validated at once: a bad input fails before any request. */
export function readInputs(): RegisterAgentInputs {
  const problems = new InputProblems();
  const apiUrl = checkApiUrl('api-url', core.getInput('api-url'), problems);
  const name = checkRequired('name', core.getInput('name'), problems);
  const scopes = checkScopes('scopes', core.getInput('scopes'), problems);
  problems.throwIfAny();
  return Object.freeze({
    apiUrl: apiUrl as string,
    name: name as string,
    description: core.getInput('description') || undefined,
    scopes,
    audience: core.getInput('audience') || (apiUrl as string),
    retryPolicy: readRetryPolicy(process.env),
    repository: process.env.GITHUB_REPOSITORY || undefined,
    ref: process.env.GITHUB_REF || undefined,
  });
}
