/** keys rotate, keys list, keys rewrap, keys revoke. */
import type { SigningKeySummary } from '../keys/signing-key-store.js';
import { formatTable } from './output.js';
import type { Command } from './command.js';

function stateOf(key: SigningKeySummary): string {
  if (key.revokedAt) return `revoked ${key.revokedAt}`;
  return key.retiredAt ? `retired ${key.retiredAt}` : 'active';
}

function privateKeyOf(key: SigningKeySummary): string {
  if (key.privateKey === 'encrypted') return `encrypted (KEK ${key.kekId})`;
  return key.privateKey === 'clear' ? 'CLEAR' : 'erased';
}

export const keyCommands: Command[] = [
  {
    name: 'keys rotate',
    summary: 'make a new signing key active; the old one stays published until its tokens expire',
    run: async ({ config, caller, keys, output }) => {
      const { kid, retired } = await keys.rotate(caller, config.signingAlg);
      output.result({ kid, alg: config.signingAlg, retired }, () =>
        [
          `active key: ${kid} (${config.signingAlg})`,
          `retired: ${retired.join(', ') || 'none'}`,
          'Running instances sign with the new key within a minute.',
        ].join('\n'),
      );
    },
  },
  {
    name: 'keys list',
    summary: 'list the signing keys, newest first',
    readsOnly: true,
    run: async ({ keys, output }) => {
      const listed = await keys.list();
      output.result(listed, () =>
        formatTable(
          ['KID', 'ALG', 'CREATED', 'STATE', 'PRIVATE KEY'],
          listed.map((key) => [key.kid, key.alg, key.createdAt, stateOf(key), privateKeyOf(key)]),
          'no signing keys yet (the server creates one at its first start)',
        ),
      );
    },
  },
  {
    name: 'keys rewrap',
    summary: 're-encrypt every signing key and webhook secret under KEY_ENCRYPTION_KEY (after a key-encryption key rotation)',
    run: async ({ config, caller, keys, webhooks, output }) => {
      const result = { ...(await keys.rewrap(caller, config.signingAlg)), webhookEndpointsResealed: await webhooks.resealSecrets(caller) };
      output.result(result, () =>
        [
          `key-encryption key: ${result.kekId}`,
          `re-encrypted: ${result.rewrapped.join(', ') || 'none (every key was already under it)'}`,
          ...(result.rotatedOutOfClear
            ? [`stored in clear, rotated out: ${result.rotatedOutOfClear.clear.join(', ')}; new active key: ${result.rotatedOutOfClear.kid}`]
            : []),
          `webhook endpoints whose secrets were re-encrypted: ${result.webhookEndpointsResealed}`,
        ].join('\n'),
      );
    },
  },
  {
    name: 'keys revoke',
    summary: 'withdraw a signing key at once: out of the JWKS, every token it signed inactive',
    arguments: ['kid'],
    run: async ({ config, caller, keys, output }, { args: [kid] }) => {
      const result = await keys.revoke(caller, kid, config.signingAlg);
      output.result(result, () =>
        [
          result.revoked ? `revoked: ${kid}` : `${kid} was already revoked: nothing to do`,
          ...(result.replacedBy ? [`it was the active key; new active key: ${result.replacedBy}`] : []),
          ...(result.revoked ? ['Every token it signed is inactive from now on, and the JWKS no longer lists it.'] : []),
        ].join('\n'),
      );
    },
  },
];
