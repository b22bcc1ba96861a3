// Builds each action's standalone release tree, ready to be pushed as the root of its own
// repository (sentryagent/issue-token, …) and listed on the Marketplace, which wants
// action.yml at the root: <out>/<name>/{action.yml, README.md, LICENSE, dist/}. Nothing
// else is needed at run time, since dist/index.js carries every dependency (ncc).
//
//   node scripts/release-actions.mjs --out <dir> [--source-url <url>] [--ref <ref>]
//
// The trees take the committed dist/ (CI's check-dist proves it is what the sources build).
// README links that point elsewhere in this repository become absolute links to
// <source-url>/blob/<ref>/…, since the tree holds only the action.
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, posix, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { actionsDir, listActions, root } from './bundle.mjs';

/** The files of a release tree, relative to its root. */
export const TREE_FILES = ['action.yml', 'README.md', 'LICENSE', 'dist/index.js', 'dist/package.json', 'dist/licenses.txt'];

function defaultSourceUrl() {
  const { GITHUB_SERVER_URL, GITHUB_REPOSITORY } = process.env;
  return GITHUB_SERVER_URL && GITHUB_REPOSITORY ? `${GITHUB_SERVER_URL}/${GITHUB_REPOSITORY}` : 'https://github.com/sentryagent/sentryagent-idp';
}

/** Markdown links relative to actions/<name>/README.md, made absolute (anchors and URLs stay). */
export function absolutizeLinks(markdown, name, sourceUrl, ref) {
  return markdown.replace(/\]\((?![a-z][a-z0-9+.-]*:|#)([^)\s]+)\)/gi, (_match, target) => {
    const [path, anchor] = target.split('#');
    const inRepo = posix.normalize(posix.join('actions', name, path));
    return `](${sourceUrl}/blob/${ref}/${inRepo}${anchor === undefined ? '' : `#${anchor}`})`;
  });
}

/** Writes <outRoot>/<name>/ for every action; returns the names. */
export function buildReleaseTrees(outRoot, { sourceUrl = defaultSourceUrl(), ref = 'main' } = {}) {
  const names = listActions();
  for (const name of names) {
    const from = join(actionsDir, name);
    const to = join(outRoot, name);
    rmSync(to, { recursive: true, force: true });
    mkdirSync(to, { recursive: true });
    if (!existsSync(join(from, 'dist', 'index.js'))) {
      throw new Error(`actions/${name}/dist/index.js is missing: run \`npm run bundle\` first.`);
    }
    copyFileSync(join(from, 'action.yml'), join(to, 'action.yml'));
    copyFileSync(join(root, 'LICENSE'), join(to, 'LICENSE'));
    cpSync(join(from, 'dist'), join(to, 'dist'), { recursive: true });
    writeFileSync(join(to, 'README.md'), absolutizeLinks(readFileSync(join(from, 'README.md'), 'utf8'), name, sourceUrl, ref));
  }
  return names;
}

if (import.meta.url === pathToFileURL(process.argv[1]).href) {
  const option = (flag) => {
    const at = process.argv.indexOf(flag);
    return at === -1 ? undefined : process.argv[at + 1];
  };
  const out = option('--out');
  if (!out) {
    console.error('Usage: node scripts/release-actions.mjs --out <dir> [--source-url <url>] [--ref <ref>]');
    process.exit(2);
  }
  try {
    const outRoot = resolve(out);
    const names = buildReleaseTrees(outRoot, { sourceUrl: option('--source-url') ?? defaultSourceUrl(), ref: option('--ref') ?? 'main' });
    for (const name of names) console.log(`actions/${name} → ${relative(process.cwd(), join(outRoot, name)) || '.'}`);
  } catch (error) {
    console.error(error.message);
    process.exitCode = 1;
  }
}
