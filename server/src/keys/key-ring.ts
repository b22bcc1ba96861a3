/**
 * Where this process's key-encryption keys come from: KEY_ENCRYPTION_KEY (and
 * KEY_ENCRYPTION_KEY_PREVIOUS) when set; else, on the embedded database, a key generated
 * into DATA_DIR on first use (owner-only, 0600) and read from there afterwards; else, on
 * PostgreSQL outside production, none: signing keys are then stored in clear.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseKeyEncryptionKey, type Config } from '../config.js';
import { DataDirError, prepareDataDir } from '../storage/data-dir.js';
import { CLEAR_KEY_RING, keyRingOf, type KeyRing } from './key-encryption.js';

export const GENERATED_KEK_FILE = 'key-encryption-key';

export type KeyRingSource = 'environment' | 'data-dir' | 'none';

export function loadKeyRing(config: Config): { ring: KeyRing; source: KeyRingSource } {
  if (config.keyEncryptionKey) {
    return { ring: keyRingOf(config.keyEncryptionKey.reveal(), config.previousKeyEncryptionKey?.reveal()), source: 'environment' };
  }
  if (config.databaseUrl !== undefined) return { ring: CLEAR_KEY_RING, source: 'none' };
  return { ring: keyRingOf(readOrCreateKekFile(config.dataDir), undefined), source: 'data-dir' };
}

function readOrCreateKekFile(dataDir: string): Buffer {
  prepareDataDir(dataDir);
  const file = path.join(dataDir, GENERATED_KEK_FILE);
  if (!fs.existsSync(file)) createKekFile(file);
  const stat = fs.lstatSync(file);
  const uid = process.getuid?.();
  if (!stat.isFile() || (uid !== undefined && stat.uid !== uid) || (stat.mode & 0o077) !== 0) {
    throw new DataDirError(
      `${file} cannot be used: the key-encryption key must be a file of this user's that nobody else can read (mode ${(stat.mode & 0o777).toString(8)}); chmod 600 ${file}`,
    );
  }
  const bytes = parseKeyEncryptionKey(fs.readFileSync(file, 'utf8').trim());
  if (!bytes) throw new DataDirError(`${file} cannot be used: it does not hold a key-encryption key (32 bytes, base64)`);
  return bytes;
}

/** Written aside and linked into place: the file appears whole or not at all, and a racing creator's key wins once. */
function createKekFile(file: string): void {
  const pending = `${file}.${process.pid}.${crypto.randomBytes(4).toString('hex')}`;
  const fd = fs.openSync(pending, 'wx', 0o600);
  try {
    fs.writeSync(fd, `${crypto.randomBytes(32).toString('base64')}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.linkSync(pending, file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  } finally {
    fs.rmSync(pending, { force: true });
  }
}
