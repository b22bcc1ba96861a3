import * as core from '@actions/core';
import { describeFailure, type FailureContext } from '../../lib/failure-messages.js';
import { createIdpClient } from '../../lib/idp-client.js';
import { issueAccessToken } from './access-token.js';
import { readInputs } from './inputs.js';

/** The main step: inputs → GitHub ID token → access token → masked outputs. */
export async function run(): Promise<void> {
  let context: FailureContext = { action: 'issue-token' };
  try {
    const inputs = readInputs();
    const { apiUrl, audience, agentId, repository, ref } = inputs;
    context = { ...context, apiUrl, audience, agentId, repository, ref };
    const client = createIdpClient({ apiUrl: inputs.apiUrl, policy: inputs.retryPolicy, log: core.info });
    const issued = await issueAccessToken(client, inputs, () => core.getIDToken(inputs.audience));
    // First thing done with the token: from here on the runner masks it in every log line.
    core.setSecret(issued.accessToken);
    core.setOutput('access-token', issued.accessToken);
    core.setOutput('expires-at', issued.expiresAt);
    // Later steps read it as $SENTRYAGENT_TOKEN with no `env:` mapping (as
    // google-github-actions/auth and aws-actions/configure-aws-credentials export theirs).
    if (inputs.exportEnv) core.exportVariable('SENTRYAGENT_TOKEN', issued.accessToken);
    if (inputs.revoke) {
      core.saveState('token', issued.accessToken);
      core.saveState('api-url', inputs.apiUrl);
      core.saveState('expires-at', issued.expiresAt);
    }
    core.info(
      `Issued an access token for agent ${inputs.agentId} (scope "${issued.scope}"), expiring at ${issued.expiresAt}` +
        (inputs.revoke ? '; it is revoked when the job ends.' : '.'),
    );
  } catch (error) {
    core.setFailed(describeFailure(error, context));
  }
}
