// Summarises a V8 .cpuprofile (from BENCH_PROFILE): self time by function and by package,
// so that a change to the hot path is judged by where the time goes, not by guesses.
// Usage: node bench/profile-summary.mjs <file.cpuprofile> [top]
import fs from 'node:fs';

const [file, top = '25'] = process.argv.slice(2);
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const selfMicros = new Map();
for (let i = 0; i < profile.samples.length; i += 1) {
  const id = profile.samples[i];
  selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
}
const total = [...selfMicros.values()].reduce((a, b) => a + b, 0);
const idle = [...selfMicros].filter(([id]) => byId.get(id).callFrame.functionName === '(idle)').reduce((a, [, v]) => a + v, 0);
const busy = total - idle;

const group = (keyOf) => {
  const sums = new Map();
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id).callFrame;
    if (frame.functionName === '(idle)') continue;
    const key = keyOf(frame);
    sums.set(key, (sums.get(key) ?? 0) + micros);
  }
  return [...sums].sort((a, b) => b[1] - a[1]);
};
const where = (url) => {
  if (!url) return '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return url;
  const own = /build\/(server\/src\/.*)$/.exec(url);
  return own ? own[1] : url;
};
const pct = (micros) => `${((100 * micros) / busy).toFixed(1).padStart(5)}%`;
console.log(`busy ${(busy / 1e6).toFixed(2)} s of ${(total / 1e6).toFixed(2)} s`);
console.log('\nby package or file:');
for (const [key, micros] of group((frame) => where(frame.url)).slice(0, Number(top))) console.log(`${pct(micros)}  ${key}`);
console.log('\nby function:');
for (const [key, micros] of group((frame) => `${frame.functionName || '(anonymous)'}  ${where(frame.url)}:${frame.lineNumber + 1}`).slice(0, Number(top)))
  console.log(`${pct(micros)}  ${key}`);
