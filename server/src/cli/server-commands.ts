/** serve, migrate, keys rotate, keys list. */
import { listSigningKeys, rotateSigningKey } from '../keys/signing-keys.js';
import { migrateDown, migrateToLatest } from '../storage/database.js';
import { formatTable } from './output.js';
import type { Command } from './command.js';

export const serverCommands: Command[] = [
  {
    name: 'serve',
    summary: 'run the IdP (what `npm start` runs), configured by the environment',
    start: async () => {
      // The server's own entry point: same start-up, same signals, same exit codes.
      await import('../main.js');
      return new Promise<never>(() => undefined);
    },
  },
  {
    name: 'migrate',
    summary: 'apply every pending migration (--down: revert the last batch)',
    synopsis: '[--down]',
    options: { down: { type: 'boolean' } },
    migratesFirst: false,
    needsDatabaseAlone: ({ options }) => options.down === true,
    run: async ({ database, output }, { options }) => {
      const isDown = options.down === true;
      const names = isDown ? await migrateDown(database) : await migrateToLatest(database);
      output.result(isDown ? { reverted: names } : { applied: names }, () =>
        names.length ? `${isDown ? 'reverted' : 'applied'}: ${names.join(', ')}` : 'nothing to do',
      );
    },
  },
  {
    name: 'keys rotate',
    summary: 'make a new signing key active; the old one stays published until its tokens expire',
    run: async ({ config, knex, caller, clock, output }) => {
      const { kid, retired } = await rotateSigningKey(knex, caller, config.signingAlg, clock);
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
    run: async ({ knex, output }) => {
      const keys = await listSigningKeys(knex);
      output.result(keys, () =>
        formatTable(
          ['KID', 'ALG', 'CREATED', 'STATE'],
          keys.map((key) => [key.kid, key.alg, key.createdAt, key.retiredAt ? `retired ${key.retiredAt}` : 'active']),
          'no signing keys yet (the server creates one at its first start)',
        ),
      );
    },
  },
];
