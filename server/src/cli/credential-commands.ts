/** credentials create | list | revoke, through the agent service. */
import { requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { inOrganization, type Command, type DatabaseCommand } from './command.js';

const commands: DatabaseCommand[] = [
  {
    name: 'credentials create',
    summary: 'create a client credential for an agent; the secret is shown this once',
    arguments: ['agentId'],
    run: async ({ services, caller, output }, { args }) => {
      const { credentialId, clientId, clientSecret, createdAt } = await services.agents.createCredential(caller, requireUuid(args[0], 'agentId'));
      output.result({ credentialId, clientId, clientSecret, createdAt }, () =>
        [
          'credential created. Store the secret now; it is not shown again.',
          formatFields([
            ['credential id', credentialId],
            ['client_id', clientId],
            ['client_secret', clientSecret],
          ]),
        ].join('\n'),
      );
    },
  },
  {
    name: 'credentials list',
    summary: 'list the credentials of an agent (never secrets)',
    readsOnly: true,
    arguments: ['agentId'],
    run: async ({ services, caller, output }, { args }) => {
      const credentials = await services.agents.listCredentials(caller, requireUuid(args[0], 'agentId'));
      output.result(credentials, () =>
        formatTable(
          ['CREDENTIAL ID', 'STATUS', 'CREATED', 'REVOKED'],
          credentials.map((credential) => [credential.credentialId, credential.status, credential.createdAt, credential.revokedAt ?? '-']),
          'no credentials',
        ),
      );
    },
  },
  {
    name: 'credentials revoke',
    summary: 'revoke one credential of an agent, and the live tokens it obtained',
    arguments: ['agentId', 'credentialId'],
    run: async ({ services, caller, output }, { args }) => {
      const agentId = requireUuid(args[0], 'agentId');
      const credential = await services.agents.revokeCredential(caller, agentId, requireUuid(args[1], 'credentialId'));
      output.result(credential, () => `credential ${credential.credentialId} of agent ${agentId} is revoked`);
    },
  },
];

/** Each takes `--org`: an agent of another organization is not found. */
export const credentialCommands: Command[] = commands.map(inOrganization);
