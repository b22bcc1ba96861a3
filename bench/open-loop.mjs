// One open-loop run, in its own process (the bench pins it to the other core): request i
// is due at start + i / rate, and is sent then whatever the server is doing; its latency is
// measured from that due time, not from when it went out, so a stall of the server shows
// in every request that fell due during it (no coordinated omission). autocannon's
// overallRate is not that: each connection sends back to back until its share of the
// second is spent, which measures bursts at saturation.
//
// argv[2]: a JSON file {url, path, method, headers, body | bodies, rate, duration, connections}
// Prints {rate, sent, completed, errors, lateDispatchMs, generatorCpuShare, p50Ms, p90Ms, p99Ms, p999Ms, maxMs}.
import fs from 'node:fs';
import { Pool } from 'undici';

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
// The first seconds at the same rate open the connections and warm this process's code;
// they are sent on the same schedule but not counted (without them the first second shows
// the generator's own cold start: 290 ms at 6,600 req/s).
const warmUp = Math.round(spec.rate * (spec.warmUpSeconds ?? 3));
const total = Math.round(spec.rate * spec.duration);
// Enough connections that the pool never holds a due request back while the server is
// healthy; when the server stalls they fill, and the queue's wait counts in the latency.
const pool = new Pool(spec.url, { connections: spec.connections ?? 256, pipelining: 1, keepAliveTimeout: 30_000 });
// A request that never completes counts as infinitely slow.
const latencies = new Float64Array(warmUp + total).fill(Infinity);
let completed = 0;
let errors = 0;
let worstLateDispatchMs = 0;

function send(index, dueMs) {
  const body = spec.bodies ? spec.bodies[index % spec.bodies.length] : spec.body;
  pool
    .request({ method: spec.method, path: spec.path, headers: spec.headers, body })
    .then(async (response) => {
      await response.body.dump();
      if (response.statusCode >= 400) errors += 1;
    })
    .catch(() => {
      errors += 1;
    })
    .finally(() => {
      latencies[index] = performance.now() - dueMs;
      if (index >= warmUp) completed += 1;
    });
}

const startMs = performance.now() + 50;
let cpuAtStart = process.cpuUsage();
setTimeout(() => (cpuAtStart = process.cpuUsage()), 50 + (warmUp * 1000) / spec.rate);
let next = 0;
await new Promise((resolve) => {
  // Every millisecond, send what has fallen due: a request is never sent early, and a late
  // tick's lateness is part of the latency measured from the due time.
  const timer = setInterval(() => {
    const nowMs = performance.now();
    while (next < warmUp + total && startMs + (next * 1000) / spec.rate <= nowMs) {
      const dueMs = startMs + (next * 1000) / spec.rate;
      if (next >= warmUp) worstLateDispatchMs = Math.max(worstLateDispatchMs, nowMs - dueMs);
      send(next, dueMs);
      next += 1;
    }
    if (next >= warmUp + total) {
      clearInterval(timer);
      resolve();
    }
  }, 1);
});
// Wait for the stragglers, at most 30 s.
const deadline = performance.now() + 30_000;
while (completed < total && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
const { user, system } = process.cpuUsage(cpuAtStart);
const generatorCpuShare = (user + system) / 1000 / (performance.now() - startMs - (warmUp * 1000) / spec.rate);
await pool.close().catch(() => {});

const counted = latencies.subarray(warmUp);
const sorted = Array.from(counted).sort((a, b) => a - b);
// The worst latency of each second of due times: a stall shows as the seconds it spans.
const perSecond = [];
for (let index = 0; index < total; index += 1) {
  const second = Math.floor(index / spec.rate);
  perSecond[second] = Math.max(perSecond[second] ?? 0, counted[index]);
}
const round = (ms) => (Number.isFinite(ms) ? Number(ms.toFixed(1)) : null);
const at = (quantile) => round(sorted[Math.min(sorted.length - 1, Math.ceil(quantile * sorted.length) - 1)]);
process.stdout.write(
  JSON.stringify({
    rate: spec.rate,
    sent: next - warmUp,
    completed,
    errors: errors + (total - completed),
    lateDispatchMs: Number(worstLateDispatchMs.toFixed(1)),
    // Over about 0.8 the generator itself is the bottleneck, and the latencies are its own.
    generatorCpuShare: Number(generatorCpuShare.toFixed(2)),
    p50Ms: at(0.5),
    p90Ms: at(0.9),
    p99Ms: at(0.99),
    p999Ms: at(0.999),
    maxMs: round(sorted.at(-1)),
    worstBySecondMs: perSecond.map(round),
  }) + '\n',
);
