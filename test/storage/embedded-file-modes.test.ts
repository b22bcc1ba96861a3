/**
 * The embedded database's files are its user's alone. PGlite sets its files' modes itself
 * (0666 for what initdb writes, 0644 for files it rewrites at each start), whatever the
 * process umask; the WAL holds the signing keys in clear. So every file and directory
 * under DATA_DIR must be owner-only once the database is open, after writes, once it is
 * closed, and after it is opened again. This test runs under Jest's umask (022), as a
 * server embedded in another program would.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it, jest } from '@jest/globals';
import { prepareDataDir } from '../../server/src/storage/data-dir.js';
import { openDatabase } from '../../server/src/storage/database.js';
import { useTemporaryDirs } from '../support/temporary-dirs.js';
import { looseModes } from '../support/file-modes.js';

// PGlite's initdb, twice opened, on a busy 2-core machine.
jest.setTimeout(120_000);

const freshDir = useTemporaryDirs('sentryagent-modes-');

const countFiles = (root: string): number =>
  fs.readdirSync(root, { withFileTypes: true }).reduce((n, entry) => n + 1 + (entry.isDirectory() ? countFiles(path.join(root, entry.name)) : 0), 0);

describe('the embedded database in DATA_DIR', () => {
  it('keeps every file and directory owner-only: once open, after writes, once closed, and when opened again', async () => {
    const dataDir = path.join(freshDir(), 'data');
    prepareDataDir(dataDir);

    let database = openDatabase({ databaseUrl: undefined, dataDir });
    try {
      await database.knex.raw('select 1');
      expect(countFiles(dataDir)).toBeGreaterThan(100);
      expect(looseModes(dataDir)).toEqual([]);

      await database.knex.raw('create table signing_material (kid text primary key, private_key text)');
      await database.knex.raw(`insert into signing_material select 'kid-' || n, repeat('k', 2000) from generate_series(1, 500) n`);
      await database.knex.raw('create index on signing_material (private_key)');
      await database.knex.raw('checkpoint');
      expect(looseModes(dataDir)).toEqual([]);
    } finally {
      await database.close();
    }
    expect(looseModes(dataDir)).toEqual([]);

    database = openDatabase({ databaseUrl: undefined, dataDir });
    try {
      expect(await database.knex('signing_material').count({ n: '*' })).toEqual([{ n: 500 }]);
      expect(looseModes(dataDir)).toEqual([]);
    } finally {
      await database.close();
    }
    expect(looseModes(dataDir)).toEqual([]);
  });
});
