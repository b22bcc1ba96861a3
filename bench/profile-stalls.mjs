// What holds the server's event loop: in a V8 .cpuprofile (BENCH_PROFILE), the stretches
// of the last `window` seconds with no idle sample for at least `min` ms, and where their
// time goes (self time by function, with the server function that called it).
// Usage: node bench/profile-stalls.mjs <file.cpuprofile> [window seconds, 13] [min ms, 8] [top, 20]
import fs from 'node:fs';

const [file, windowSeconds = '13', minMs = '8', top = '20'] = process.argv.slice(2);
const profile = JSON.parse(fs.readFileSync(file, 'utf8'));
const byId = new Map(profile.nodes.map((node) => [node.id, node]));
const parentOf = new Map();
for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);

let at = profile.startTime;
const samples = profile.samples.map((id, i) => ({ id, at: (at += profile.timeDeltas[i] ?? 0), micros: profile.timeDeltas[i + 1] ?? 0 }));
const recent = samples.filter((sample) => sample.at >= samples.at(-1).at - Number(windowSeconds) * 1e6);

const stretches = [];
let current;
for (const sample of recent) {
  if (byId.get(sample.id).callFrame.functionName === '(idle)') {
    if (current) stretches.push(current);
    current = undefined;
    continue;
  }
  current ??= { start: sample.at, samples: [] };
  current.end = sample.at + sample.micros;
  current.samples.push(sample);
}
const long = stretches.filter((stretch) => stretch.end - stretch.start >= Number(minMs) * 1000);
const ms = (micros) => Math.round(micros / 1000);

/** A sample's function, and the nearest frame of the server's own code above it. */
function labelOf(id) {
  const frames = [];
  for (let node = id; node !== undefined; node = parentOf.get(node)) frames.push(byId.get(node).callFrame);
  const ours = frames.find((frame) => frame.url.includes('/server/src/'));
  const where = (frame) => `${frame.functionName || '(anonymous)'} ${frame.url.split('/').slice(-2).join('/')}`.trim();
  return `${where(frames[0])}${ours && ours !== frames[0] ? `  <- ${where(ours)}` : ''}`;
}

const selfTime = new Map();
let total = 0;
for (const stretch of long) {
  for (const sample of stretch.samples) {
    const label = labelOf(sample.id);
    selfTime.set(label, (selfTime.get(label) ?? 0) + sample.micros);
    total += sample.micros;
  }
}
console.log(`last ${windowSeconds} s: ${long.length} stretches of ≥ ${minMs} ms without idle, ${ms(total)} ms in all; longest: ${long.map((s) => ms(s.end - s.start)).sort((a, b) => b - a).slice(0, 10).join(', ')} ms`);
for (const [label, micros] of [...selfTime].sort((a, b) => b[1] - a[1]).slice(0, Number(top))) {
  console.log(`${String(ms(micros)).padStart(7)} ms ${((100 * micros) / total).toFixed(1).padStart(5)} %  ${label}`);
}
