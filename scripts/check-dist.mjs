// Fails when a committed actions/<name>/dist differs from a fresh bundle of its sources,
// naming every differing, missing and unexpected file.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { actionsDir, bundleActions, root } from './bundle.mjs';

function listFiles(dir, prefix = '') {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? listFiles(join(dir, entry.name), `${prefix}${entry.name}/`) : [`${prefix}${entry.name}`],
  );
}

const freshRoot = mkdtempSync(join(tmpdir(), 'check-dist-'));
try {
  const names = await bundleActions((name) => join(freshRoot, name));
  const problems = [];
  for (const name of names) {
    const committedDir = join(actionsDir, name, 'dist');
    const shown = relative(root, committedDir);
    const freshDir = join(freshRoot, name);
    const committed = new Set(listFiles(committedDir));
    for (const file of listFiles(freshDir)) {
      if (!committed.delete(file)) problems.push(`${shown}/${file}: missing`);
      else if (!readFileSync(join(committedDir, file)).equals(readFileSync(join(freshDir, file)))) {
        problems.push(`${shown}/${file}: differs from a fresh build`);
      }
    }
    for (const file of committed) problems.push(`${shown}/${file}: not produced by a fresh build`);
  }
  if (problems.length > 0) {
    console.error(`Committed dist/ is out of date:\n  ${problems.join('\n  ')}\nRun \`npm run bundle\` and commit actions/*/dist.`);
    process.exitCode = 1;
  } else {
    console.log(`dist/ matches a fresh build for ${names.map((name) => `actions/${name}`).join(', ')}.`);
  }
} catch (error) {
  console.error(error.message);
  process.exitCode = 1;
} finally {
  rmSync(freshRoot, { recursive: true, force: true });
}
