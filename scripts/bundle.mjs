// Bundles every action (a folder of actions/ with src/main.ts) with ncc into
// actions/<name>/dist: index.js, package.json ({"type": "module"}) and licenses.txt, all
// committed. `node scripts/bundle.mjs --out <dir>` writes <dir>/<name>/ instead (check-dist).
// The output is byte-for-byte reproducible: no cache, no source maps, no absolute paths.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const actionsDir = join(root, 'actions');
const nccCli = createRequire(import.meta.url).resolve('@vercel/ncc/dist/ncc/cli.js');

export function listActions() {
  return readdirSync(actionsDir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(actionsDir, entry.name, 'src', 'main.ts')))
    .map((entry) => entry.name)
    .sort();
}

/** Bundles each action into `distDirOf(name)`, replacing what was there. */
export async function bundleActions(distDirOf = (name) => join(actionsDir, name, 'dist')) {
  const names = listActions();
  await Promise.all(
    names.map(async (name) => {
      const outDir = distDirOf(name);
      rmSync(outDir, { recursive: true, force: true });
      const args = ['build', join(actionsDir, name, 'src', 'main.ts'), '-o', outDir, '--license', 'licenses.txt'];
      try {
        await promisify(execFile)(process.execPath, [nccCli, ...args, '--no-cache', '--quiet'], {
          cwd: root,
          maxBuffer: 16 * 1024 * 1024,
        });
      } catch (error) {
        throw new Error(`ncc failed for actions/${name}:\n${error.stderr || error.stdout || error.message}`);
      }
    }),
  );
  return names;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const outFlag = process.argv.indexOf('--out');
  const outRoot = outFlag === -1 ? undefined : resolve(process.argv[outFlag + 1]);
  try {
    const names = await bundleActions(outRoot && ((name) => join(outRoot, name)));
    for (const name of names) {
      console.log(`bundled actions/${name} → ${relative(root, outRoot ? join(outRoot, name) : join(actionsDir, name, 'dist'))}`);
    }
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
}
