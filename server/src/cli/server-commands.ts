/** serve, migrate. */
import { migrateDown, migrateToLatest } from '../storage/database.js';
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
    optionHelp: { down: 'revert the newest migration instead (needs the database to itself)' },
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
];
