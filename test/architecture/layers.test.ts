/**
 * The shape of server/src, checked from its imports (STYLE.md, "One way through"): edges
 * (routes, endpoints, CLI commands) call services; services call stores; nothing imports
 * upwards. Folders depend on one another in one direction only, `http/` and `storage/`
 * (infrastructure) know no product concept, and no edge opens a transaction or writes an
 * audit row itself.
 */
import { describe, expect, it } from '@jest/globals';
import fs from 'node:fs';
import path from 'node:path';

const SOURCE = path.resolve('server/src');

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    return entry.isDirectory() ? sourceFiles(full) : entry.name.endsWith('.ts') ? [full] : [];
  });
}

const FILES = sourceFiles(SOURCE).map((file) => path.relative(SOURCE, file));
const textOf = (file: string) => fs.readFileSync(path.join(SOURCE, file), 'utf8');

/** Relative imports of a file (static, type-only and dynamic), as paths under server/src. */
function importsOf(file: string): string[] {
  const specifiers = [...textOf(file).matchAll(/(?:from|import)\s*\(?\s*'(\.{1,2}\/[^']+)'/g)].map((match) => match[1]);
  return specifiers
    .map((specifier) => path.normalize(path.join(path.dirname(file), specifier)).replace(/\.js$/, '.ts'))
    .filter((target) => !target.startsWith('..')); // ../../migrations: outside server/src
}

/** A file's unit: its folder, or for a file at the top its own name. */
const unitOf = (file: string) => (file.includes(path.sep) ? file.split(path.sep)[0] : path.basename(file, '.ts'));

/** What each unit may import, besides itself. The composition roots and the CLI may import anything. */
const BASE = ['errors', 'clock', 'config', 'logger'];
const ALLOWED: Record<string, readonly string[]> = {
  errors: [],
  clock: [],
  logger: ['config'],
  // EGRESS_ALLOW_CIDRS is validated with the egress unit's pure CIDR parser.
  config: ['egress'],
  // Outbound requests (egress/egress-guard.ts): below everything, pure but for node:http(s) and DNS.
  egress: [],
  storage: [...BASE],
  http: [...BASE, 'storage'],
  openapi: [...BASE, 'http'],
  authorization: [...BASE],
  tenancy: [...BASE, 'storage', 'authorization'],
  audit: [...BASE, 'storage', 'http', 'authorization', 'tenancy'],
  keys: [...BASE, 'storage', 'http', 'authorization', 'audit'],
  oauth: [...BASE, 'storage', 'http', 'authorization', 'audit', 'keys'],
  agents: [...BASE, 'storage', 'http', 'authorization', 'audit', 'oauth', 'tenancy'],
  github: [...BASE, 'storage', 'http', 'authorization', 'audit', 'oauth', 'agents', 'tenancy'],
  organizations: [...BASE, 'storage', 'http', 'authorization', 'audit', 'oauth', 'agents', 'tenancy'],
  federation: [...BASE, 'storage', 'http', 'authorization', 'audit', 'oauth', 'agents', 'tenancy', 'github', 'keys'],
  // Endpoints, the outbox fan-out and the delivery worker; outbound only through the egress guard.
  webhooks: [...BASE, 'storage', 'http', 'authorization', 'audit', 'tenancy', 'keys', 'egress'],
  // The admin console's counts: the audit log, access_tokens and usage_refusals, read only.
  stats: [...BASE, 'storage', 'http', 'authorization', 'tenancy', 'audit'],
  services: [...BASE, 'storage', 'authorization', 'audit', 'keys', 'agents', 'github', 'organizations', 'federation'],
  maintenance: [...BASE, 'storage', 'audit', 'keys', 'oauth', 'github', 'webhooks'],
};
const COMPOSITION = new Set(['app', 'server', 'main', 'workers', 'cli']);

describe('the import direction', () => {
  it('knows every folder and top-level file', () => {
    const units = new Set(FILES.map(unitOf));
    expect([...units].filter((unit) => !(unit in ALLOWED) && !COMPOSITION.has(unit))).toEqual([]);
  });

  it('holds for every import: no unit imports one above it', () => {
    const violations = FILES.flatMap((file) => {
      const unit = unitOf(file);
      if (COMPOSITION.has(unit)) return [];
      return importsOf(file)
        .filter((target) => unitOf(target) !== unit && !ALLOWED[unit].includes(unitOf(target)))
        .map((target) => `${file} -> ${target}`);
    });
    expect(violations).toEqual([]);
  });

  it('has no cycle between folders', () => {
    const edges = new Map<string, Set<string>>();
    for (const file of FILES) {
      for (const target of importsOf(file)) {
        const [from, to] = [unitOf(file), unitOf(target)];
        if (from !== to) edges.set(from, (edges.get(from) ?? new Set()).add(to));
      }
    }
    const reaches = (from: string, to: string, seen = new Set<string>()): boolean =>
      [...(edges.get(from) ?? [])].some((next) => next === to || (!seen.has(next) && (seen.add(next), reaches(next, to, seen))));
    const cycles = [...edges.keys()].filter((unit) => !COMPOSITION.has(unit) && reaches(unit, unit));
    expect(cycles).toEqual([]);
  });

  it('keeps stores below services, and services free of HTTP', () => {
    const isStore = (file: string) => /-store\.ts$/.test(file);
    const isService = (file: string) => /-service\.ts$/.test(file);
    const isEdge = (file: string) => /-(routes|endpoint)\.ts$/.test(file) || file.startsWith(`cli${path.sep}`);
    const violations = FILES.flatMap((file) => {
      const targets = importsOf(file);
      const packages = [...textOf(file).matchAll(/from '([^.][^']*)'/g)].map((match) => match[1]);
      if (isStore(file)) {
        return [...targets.filter((target) => isService(target) || isEdge(target)), ...packages.filter((name) => /^(koa|@koa\/)/.test(name))].map((t) => `${file} -> ${t}`);
      }
      if (isService(file)) {
        return [...targets.filter((target) => isEdge(target) || target.startsWith(`http${path.sep}`)), ...packages.filter((name) => /^(koa|@koa\/)/.test(name))].map(
          (t) => `${file} -> ${t}`,
        );
      }
      return [];
    });
    expect(violations).toEqual([]);
  });

  it('leaves transactions and audit writes to services: no route, endpoint or CLI command has one', () => {
    const edges = FILES.filter((file) => /-(routes|endpoint)\.ts$/.test(file) || /^cli\/.*-commands\.ts$/.test(file.split(path.sep).join('/')));
    expect(edges.length).toBeGreaterThan(8);
    const offenders = edges.filter((file) => /\.transaction\(|appendAuditEvent|from 'knex'/.test(textOf(file)));
    expect(offenders).toEqual([]);
  });
});
