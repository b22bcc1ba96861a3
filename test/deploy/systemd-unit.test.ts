/**
 * deploy/sentryagent-idp.service: the unit a supervisor runs. It starts the compiled server
 * with node itself (so SIGTERM reaches it, unlike through `npm start`'s shell), restarts it
 * on failure, stops it with SIGTERM and time to drain, and confines it. Where
 * `systemd-analyze` is installed, systemd's own parser checks it too.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';

const UNIT = 'deploy/sentryagent-idp.service';
const INSTALL_ROOT = '/opt/sentryagent-idp';

type Unit = Map<string, Map<string, string[]>>;

/** systemd.syntax(7), as far as this unit needs: sections, `Key=value` (keys may repeat), comments. */
function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const line of text.split('\n').map((raw) => raw.trim())) {
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      unit.set(header[1], (section = new Map()));
      continue;
    }
    const entry = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (!entry || !section) throw new Error(`not a unit-file line: ${line}`);
    section.set(entry[1], [...(section.get(entry[1]) ?? []), entry[2]]);
  }
  return unit;
}

const text = fs.readFileSync(UNIT, 'utf8');
const unit = parseUnit(text);
const service = unit.get('Service') ?? new Map<string, string[]>();
const one = (key: string) => {
  const values = service.get(key) ?? [];
  expect(values).toHaveLength(1);
  return values[0];
};

const hasSystemdAnalyze = spawnSync('systemd-analyze', ['--version']).status === 0;

describe('the systemd unit', () => {
  it('has the three sections and is wanted by multi-user.target', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    expect(unit.get('Install')?.get('WantedBy')).toEqual(['multi-user.target']);
  });

  it('runs the compiled server with node directly, from the installed release, with the production environment', () => {
    expect(one('Type')).toBe('simple');
    expect(one('WorkingDirectory')).toBe(INSTALL_ROOT);
    const [node, script, ...rest] = one('ExecStart').split(/\s+/);
    expect(node).toBe('/usr/bin/node');
    expect(rest).toEqual([]);
    expect(script.startsWith(`${INSTALL_ROOT}/`)).toBe(true);
    // `npm run build` (global-setup runs it) makes what the unit starts.
    expect(fs.existsSync(path.relative(INSTALL_ROOT, script))).toBe(true);
    expect(path.relative(INSTALL_ROOT, script)).toBe('build/server/src/main.js');
    expect(one('EnvironmentFile')).toBe('/etc/sentryagent-idp/env');
    expect(one('Environment').split(' ')).toEqual(expect.arrayContaining(['NODE_ENV=production', 'DATA_DIR=/var/lib/sentryagent-idp']));
    expect(one('User')).toBe('sentryagent-idp');
  });

  it('restarts on failure and stops with SIGTERM to the main process, leaving time to drain', () => {
    expect(one('Restart')).toBe('on-failure');
    expect(one('KillSignal')).toBe('SIGTERM');
    expect(one('KillMode')).toBe('mixed');
    // server.ts cuts connections still open 10 s into a drain.
    expect(Number(one('TimeoutStopSec'))).toBeGreaterThan(10);
  });

  it('confines the service: no new privileges, a read-only system, DATA_DIR the only writable path', () => {
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    expect(one('PrivateTmp')).toBe('yes');
    expect(one('ProtectHome')).toBe('yes');
    expect(one('ReadWritePaths')).toBe('/var/lib/sentryagent-idp');
    expect(one('StateDirectory')).toBe('sentryagent-idp');
    expect(one('StateDirectoryMode')).toBe('0700');
    expect(one('UMask')).toBe('0077');
  });

  (hasSystemdAnalyze ? it : it.skip)('passes systemd-analyze verify without a warning', () => {
    // Verified as installed here: this checkout as the release, this node as /usr/bin/node.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sentryagent-unit-'));
    try {
      const file = path.join(dir, 'sentryagent-idp.service');
      fs.writeFileSync(file, text.replaceAll('/usr/bin/node', process.execPath).replaceAll(INSTALL_ROOT, process.cwd()));
      const result = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
      expect({ status: result.status, output: result.stdout + result.stderr }).toEqual({ status: 0, output: '' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
