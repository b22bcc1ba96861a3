/**
 * A trust policy links a GitHub repository (and optionally a branch, environment and
 * workflow) to one agent, or, with no agentId, lets matching workflows register agents
 * (CONTRACT.md, "Trust policies (GitHub)"). Unset constraints are `undefined` or `null`
 * (the store may return either); an empty string is a set constraint that matches nothing.
 */
export interface TrustPolicy {
  readonly id: string;
  readonly provider: 'github';
  /** `owner/name`, compared ignoring ASCII case only. */
  readonly repository: string;
  /** null: a registration policy (`/oidc/register`). */
  readonly agentId: string | null;
  /**
   * A branch name or glob (`*` within a path segment, `**` across): the token's `ref` must
   * be `refs/heads/<branch>`. Unset, with no `tag` either: any branch, never a tag or a
   * pull-request ref.
   */
  readonly branch?: string | null;
  /** Instead of `branch` (never both): the token's `ref` must be `refs/tags/<tag>`, exactly or by glob. */
  readonly tag?: string | null;
  readonly environment?: string | null;
  readonly workflowRef?: string | null;
  readonly jobWorkflowRef?: string | null;
  /** GitHub's numeric ids as strings; unset ones are bound on the first successful exchange. */
  readonly repositoryId?: string | null;
  readonly repositoryOwnerId?: string | null;
  /** Unlocks the privileged events (`pull_request_target`, `workflow_run`, `issue_comment`); other events are always allowed. */
  readonly allowedEvents: readonly string[];
  /** A subset of the agent's scopes; null or undefined means all of them. */
  readonly scopes?: readonly string[] | null;
}
