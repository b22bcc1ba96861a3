// One autocannon run, in its own process (the bench pins it to the other core).
// argv[2]: a JSON file {url, path, method, headers, bodies?: string[] | body, connections, duration}
// (a file: thousands of single-use ID tokens do not fit in a command line)
// With `bodies`, each request takes the next body (fresh single-use GitHub ID tokens).
import fs from 'node:fs';
import autocannon from 'autocannon';

const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
let next = 0;
const requests = [
  {
    method: spec.method,
    path: spec.path,
    headers: spec.headers,
    ...(spec.bodies
      ? { setupRequest: (request) => ({ ...request, body: spec.bodies[next++ % spec.bodies.length] }) }
      : { body: spec.body }),
  },
];
const result = await autocannon({ url: spec.url, connections: spec.connections, duration: spec.duration, requests });
process.stdout.write(
  JSON.stringify({
    requestsPerSecond: Math.round(result.requests.average),
    total: result.requests.total,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    non2xx: result.non2xx,
    sent: next,
  }) + '\n',
);
