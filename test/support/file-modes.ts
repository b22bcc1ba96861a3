/** File modes under a directory: what group or others may use (DATA_DIR must be its user's alone). */
import fs from 'node:fs';
import path from 'node:path';

/** Every file or directory under `root` (itself included) that group or others may use, with its mode. */
export function looseModes(root: string): string[] {
  const loose: string[] = [];
  const visit = (file: string) => {
    const stat = fs.lstatSync(file);
    if ((stat.mode & 0o077) !== 0) loose.push(`${path.relative(root, file) || '.'} ${(stat.mode & 0o777).toString(8)}`);
    if (stat.isDirectory()) for (const entry of fs.readdirSync(file)) visit(path.join(file, entry));
  };
  visit(root);
  return loose;
}
