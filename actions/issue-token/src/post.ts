import * as core from '@actions/core';
import { describeFailure } from '../../lib/failure-messages.js';
import { createIdpClient } from '../../lib/idp-client.js';
import { revokeAccessToken } from './access-token.js';
import { readPostState } from './inputs.js';

/** The post step: revoke the job's token. Its failures are warnings; the job's result stands. */
export async function runPost(): Promise<void> {
  const state = readPostState();
  if (state.token === '') {
    core.info('No access token to revoke.');
    return;
  }
  core.setSecret(state.token);
  if (Date.parse(state.expiresAt) <= Date.now()) {
    core.info('The access token has already expired; nothing to revoke.');
    return;
  }
  try {
    const client = createIdpClient({ apiUrl: state.apiUrl, policy: state.retryPolicy, log: core.info });
    await revokeAccessToken(client, state.token);
    core.info('Revoked the access token issued for this job.');
  } catch (error) {
    const reason = describeFailure(error, { action: 'issue-token', apiUrl: state.apiUrl });
    core.warning(`Could not revoke the access token; it stays valid until ${state.expiresAt}. ${reason}`);
  }
}
