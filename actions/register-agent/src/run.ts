import * as core from '@actions/core';
import { toSafeLine } from '../../lib/errors.js';
import { describeFailure, type FailureContext } from '../../lib/failure-messages.js';
import { createIdpClient } from '../../lib/idp-client.js';
import { readInputs } from './inputs.js';
import { registerAgent } from './register.js';

/** inputs → GitHub ID token → agent registered (or found again) → outputs. */
export async function run(): Promise<void> {
  let context: FailureContext = { action: 'register-agent' };
  try {
    const inputs = readInputs();
    const { apiUrl, audience, repository, ref } = inputs;
    context = { ...context, apiUrl, audience, repository, ref };
    const client = createIdpClient({ apiUrl, policy: inputs.retryPolicy, log: core.info });
    const agent = await registerAgent(client, inputs, () => core.getIDToken(audience));
    core.setOutput('agent-id', agent.agentId);
    core.setOutput('created', String(agent.created));
    // The name may come from an expression a stranger controls (a pull request title): one safe line.
    const name = toSafeLine(inputs.name, 128);
    core.info(
      agent.created
        ? `Registered agent "${name}" as ${agent.agentId}.`
        : `Agent "${name}" was already registered for this repository as ${agent.agentId}.`,
    );
  } catch (error) {
    core.setFailed(describeFailure(error, context));
  }
}
