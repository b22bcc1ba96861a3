/** credentials create | list | revoke, through the agent service. */
import { createCredential, revokeCredential } from '../agents/agent-service.js';
import { findAgent } from '../agents/agent-store.js';
import { listCredentials } from '../agents/credential-store.js';
import { notFound } from '../http/errors.js';
import { requireUuid } from '../http/validation.js';
import { formatFields, formatTable } from './output.js';
import { OPERATOR, type Command } from './command.js';

export const credentialCommands: Command[] = [
  {
    name: 'credentials create',
    summary: 'create a client credential for an agent; the secret is shown this once',
    arguments: ['agentId'],
    run: async ({ knex, output }, { args }) => {
      const { credentialId, clientId, clientSecret, createdAt } = await createCredential(knex, requireUuid(args[0], 'agentId'), OPERATOR);
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
    run: async ({ knex, output }, { args }) => {
      const agentId = requireUuid(args[0], 'agentId');
      if (!(await findAgent(knex, agentId))) throw notFound('Agent');
      const credentials = await listCredentials(knex, agentId);
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
    run: async ({ knex, output }, { args }) => {
      const agentId = requireUuid(args[0], 'agentId');
      const credential = await revokeCredential(knex, agentId, requireUuid(args[1], 'credentialId'), OPERATOR);
      output.result(credential, () => `credential ${credential.credentialId} of agent ${agentId} is revoked`);
    },
  },
];
