/**
 * The workflows and every documented example hold to the rules a user's workflow should:
 * third-party actions pinned to a commit (a tag can be moved under us), checkouts that
 * leave no token in .git/config, declared permissions, and an access token that reaches a
 * script through `env:`, never pasted into it as `${{ … }}`. A small reader for the plain
 * layout of these files (block style, two-space indents), not a YAML parser.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from '@jest/globals';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WORKFLOWS_DIR = join(ROOT, '.github', 'workflows');
const workflowFiles = readdirSync(WORKFLOWS_DIR).filter((name) => /\.ya?ml$/.test(name)).sort();
const markdownFiles = [
  'README.md',
  'CHANGELOG.md',
  ...readdirSync(join(ROOT, 'actions'), { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && entry.name !== 'lib')
    .map((entry) => `actions/${entry.name}/README.md`),
  ...readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).map((name) => `docs/${name}`),
];

const indentOf = (line: string) => line.length - line.trimStart().length;

/** The lines after `start` that are indented deeper than `indent` (blank lines included). */
function blockAfter(lines: string[], start: number, indent: number): string[] {
  const block: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line.trim() !== '' && indentOf(line) <= indent) break;
    block.push(line);
  }
  return block;
}

/** Problems with every `uses:` of a workflow: non-local actions pinned to a SHA with `# vX`. */
function findUnpinnedActions(text: string): string[] {
  return text.split('\n').flatMap((line) => {
    const match = /^\s*(?:-\s+)?uses:\s*(\S+)(.*)$/.exec(line);
    if (!match || match[1].startsWith('./') || match[1].startsWith('docker://')) return [];
    const [, ref, rest] = match;
    return /^[\w.-]+\/[\w./-]+@[0-9a-f]{40}$/.test(ref) && /^\s+#\s*v\d+(\.\d+)*\s*$/.test(rest) ? [] : [line.trim()];
  });
}

/** Checkout steps that do not set `persist-credentials: false`. */
function findPersistedCheckouts(text: string): string[] {
  const lines = text.split('\n');
  return lines.flatMap((line, at) => {
    const step = /^(\s*)(-\s+)?uses:\s*actions\/checkout@/.exec(line);
    if (!step) return [];
    // The step's keys sit at the `uses:` key's column; `with:` values deeper.
    const keyIndent = step[1].length + (step[2]?.length ?? 0);
    const rest = blockAfter(lines, at, keyIndent - 1);
    return rest.some((next) => /^\s*persist-credentials:\s*false\s*$/.test(next)) ? [] : [line.trim()];
  });
}

/** The workflow-level `permissions:` value, as written ('{}' or its block), or undefined. */
function readTopLevelPermissions(text: string): string | undefined {
  const lines = text.split('\n');
  const at = lines.findIndex((line) => /^permissions:/.test(line));
  if (at === -1) return undefined;
  const inline = lines[at].replace(/^permissions:\s*/, '').replace(/\s+#.*$/, '');
  if (inline !== '') return inline;
  return blockAfter(lines, at, 0)
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .join(', ');
}

/** Whether a branch's push and its pull request would both run the workflow: push on every branch beside pull_request. */
function runsTwicePerPullRequest(text: string): boolean {
  const lines = text.split('\n');
  const on = lines.findIndex((line) => /^on:\s*$/.test(line));
  if (on === -1) return false;
  const block = blockAfter(lines, on, 0);
  const push = block.findIndex((line) => /^ {2}push:/.test(line));
  if (push === -1 || !block.some((line) => /^ {2}pull_request:/.test(line))) return false;
  return !blockAfter(block, push, 2).some((line) => /^\s+(branches|tags):/.test(line));
}

/** `run:` scripts (in workflows, or in markdown code blocks) that paste an access token into the script. */
function findTokenExpressionsInRun(text: string): string[] {
  const lines = text.split('\n');
  return lines.flatMap((line, at) => {
    const run = /^(\s*)(-\s+)?run:(.*)$/.exec(line);
    if (!run) return [];
    const script = [run[3], ...blockAfter(lines, at, run[1].length + (run[2]?.length ?? 0))].join('\n');
    return /\$\{\{[^}]*outputs\.access-token[^}]*\}\}/.test(script) ? [line.trim()] : [];
  });
}

/** The contents of every fenced code block of a markdown text. */
function codeBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^( *)```[^\n]*\n([\s\S]*?)^\1```/gm)].map((match) => match[2]);
}

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');

describe('workflow checks', () => {
  it('find what they look for', () => {
    const bad = [
      'permissions:',
      '  id-token: write',
      'jobs:',
      '  a:',
      '    steps:',
      '      - uses: actions/checkout@v4',
      '      - uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020',
      '      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0',
      '        with:',
      '          fetch-depth: 0',
      '      - uses: ./actions/issue-token',
      '      - name: Call',
      '        run: |',
      '          curl -H "Authorization: Bearer ${{ steps.token.outputs.access-token }}" x',
      '      - run: echo ${{ steps.t.outputs.access-token }}',
      '      - env:',
      '          T: ${{ steps.token.outputs.access-token }}',
      '        run: echo "$T"',
    ].join('\n');
    expect(findUnpinnedActions(bad)).toEqual(['- uses: actions/checkout@v4', '- uses: actions/setup-node@49933ea5288caeca8642d1e84afbd3f7d6820020']);
    expect(findPersistedCheckouts(bad)).toEqual(['- uses: actions/checkout@v4', '- uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0']);
    expect(readTopLevelPermissions(bad)).toBe('id-token: write');
    expect(readTopLevelPermissions('on: push\njobs: {}\n')).toBeUndefined();
    expect(runsTwicePerPullRequest('on:\n  push:\n  pull_request:\n')).toBe(true);
    expect(runsTwicePerPullRequest('on:\n  push:\n    branches: [main]\n  pull_request:\n')).toBe(false);
    expect(findTokenExpressionsInRun(bad)).toEqual(['run: |', '- run: echo ${{ steps.t.outputs.access-token }}']);
    expect(codeBlocks('text\n   ```yaml\n   a: 1\n   ```\nmore\n```\nb\n```\n')).toEqual(['   a: 1\n', 'b\n']);
  });
});

describe.each(workflowFiles)('.github/workflows/%s', (file) => {
  const text = read(`.github/workflows/${file}`);

  it('pins every third-party action to a full commit SHA, with its tag in a comment', () => {
    expect(findUnpinnedActions(text)).toEqual([]);
  });

  it('checks out with persist-credentials: false', () => {
    expect(findPersistedCheckouts(text)).toEqual([]);
  });

  it('declares its permissions, at most contents: read for the whole workflow', () => {
    expect(['{}', 'contents: read']).toContain(readTopLevelPermissions(text));
  });

  it('runs once per change: push only on named branches when pull requests run it too', () => {
    expect(runsTwicePerPullRequest(text)).toBe(false);
  });

  it('passes access tokens to scripts through env:', () => {
    expect(findTokenExpressionsInRun(text)).toEqual([]);
  });
});

describe('documented examples', () => {
  it.each(markdownFiles)('%s passes access tokens to run: through env:', (file) => {
    const problems = codeBlocks(read(file)).flatMap(findTokenExpressionsInRun);
    expect(problems).toEqual([]);
  });

  it('cover the README and every action README', () => {
    expect(markdownFiles).toEqual(expect.arrayContaining(['README.md', 'actions/issue-token/README.md', 'actions/register-agent/README.md', 'docs/actions.md']));
  });
});

it('Dependabot updates npm packages and the pinned actions', () => {
  const config = read('.github/dependabot.yml');
  expect(config).toMatch(/package-ecosystem:\s*npm\b/);
  expect(config).toMatch(/package-ecosystem:\s*github-actions\b/);
});
