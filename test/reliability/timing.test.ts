/**
 * An unknown client_id and a known client_id with a wrong secret cannot be told apart by
 * how long POST /api/v1/token takes to refuse them: client_secret_post and
 * client_secret_basic, with secrets of ordinary length and close to the size limits
 * (where work per byte that one path does and the other does not would weigh most).
 *
 * Method. Requests go one at a time over one keep-alive connection, in pairs: one for the
 * known client and one for an unknown id, in random order within the pair, after a warm-up.
 * The unknown id is the same throughout, as an attacker probing one id would send it (a
 * cache of ids found missing would show). If both paths cost the same, the random order
 * makes each pair's difference symmetric about zero whatever else the machine does
 * meanwhile, so a Wilcoxon signed-rank test over the pairs is not fooled by load that
 * comes and goes. A case fails when the difference is both significant (|z| > 4, p < 1e-4)
 * and material: a median difference over max(50 µs, 5% of the median request). Answering
 * an unknown id without the database round trip and the hash comparison saves a third or
 * more of a request and shows at z ≈ 14; a lookup that does less work for an unknown id
 * (the server before this test: ~120 µs, 8%) shows at z ≈ 7–11. Smaller differences,
 * such as one extra hash of a 60 kB secret (~20 µs here), are below what this can see.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { startTestServer, type TestServer } from '../support/test-server.js';
import { adminToken, createAgent, type AgentWithSecret } from '../support/api.js';

const PAIRS = 300;
const WARM_UP_PAIRS = 40;

let server: TestServer;
let known: AgentWithSecret;
const unknownId = crypto.randomUUID();
const connection = new http.Agent({ keepAlive: true, maxSockets: 1 });

beforeAll(async () => {
  server = await startTestServer({ env: { LOG_LEVEL: 'info' } });
  known = await createAgent(server, await adminToken(server), { name: 'timing-target', scopes: ['agents:read'] });
});
afterAll(async () => {
  connection.destroy();
  await server?.stop();
});

interface Timed {
  readonly micros: number;
  readonly status: number;
  readonly body: string;
}

function requestToken(body: string, headers: Record<string, string>): Promise<Timed> {
  const { hostname, port } = new URL(server.url);
  return new Promise((resolve, reject) => {
    const startedAt = process.hrtime.bigint();
    const request = http.request(
      {
        host: hostname,
        port,
        path: '/api/v1/token',
        method: 'POST',
        agent: connection,
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body), ...headers },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () =>
          resolve({ micros: Number(process.hrtime.bigint() - startedAt) / 1000, status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
        );
      },
    );
    request.on('error', reject);
    request.end(body);
  });
}

type Method = 'client_secret_post' | 'client_secret_basic';

/** A refused token request for this client with a fresh wrong secret of this length. */
function refusedRequest(method: Method, clientId: string, secretLength: number): Promise<Timed> {
  const secret = `sk_live_${crypto.randomBytes(secretLength).toString('base64url').slice(0, secretLength)}`;
  if (method === 'client_secret_basic') {
    const basic = Buffer.from(`${clientId}:${secret}`).toString('base64');
    return requestToken('grant_type=client_credentials', { Authorization: `Basic ${basic}` });
  }
  return requestToken(`grant_type=client_credentials&client_id=${clientId}&client_secret=${secret}`, {});
}

const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

/** Wilcoxon signed-rank statistic as a z-score (normal approximation, ties given mean ranks). */
function signedRankZ(differences: readonly number[]): number {
  const nonZero = differences.filter((difference) => difference !== 0).sort((a, b) => Math.abs(a) - Math.abs(b));
  const n = nonZero.length;
  let positiveRanks = 0;
  for (let first = 0; first < n; ) {
    let next = first;
    while (next < n && Math.abs(nonZero[next]) === Math.abs(nonZero[first])) next += 1;
    const meanRank = (first + 1 + next) / 2;
    for (let index = first; index < next; index += 1) if (nonZero[index] > 0) positiveRanks += meanRank;
    first = next;
  }
  const mean = (n * (n + 1)) / 4;
  const sd = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24);
  return (positiveRanks - mean) / sd;
}

interface Comparison {
  readonly knownMedianMicros: number;
  readonly unknownMedianMicros: number;
  /** Median of (known − unknown) over the pairs. */
  readonly medianDifferenceMicros: number;
  readonly z: number;
}

async function compare(method: Method, secretLength: number): Promise<Comparison> {
  const pair = async () => {
    const knownFirst = Math.random() < 0.5;
    const first = await refusedRequest(method, knownFirst ? known.agentId : unknownId, secretLength);
    const second = await refusedRequest(method, knownFirst ? unknownId : known.agentId, secretLength);
    return knownFirst ? { known: first, unknown: second } : { known: second, unknown: first };
  };
  for (let i = 0; i < WARM_UP_PAIRS; i += 1) await pair();
  const pairs = [];
  for (let i = 0; i < PAIRS; i += 1) pairs.push(await pair());
  // Both must be the same refusal, or this measures something else.
  for (const { known: k, unknown: u } of [pairs[0], pairs[pairs.length - 1]]) {
    expect({ status: k.status, body: JSON.parse(k.body) }).toEqual({ status: 401, body: { error: 'invalid_client', error_description: expect.any(String) } });
    expect(u.body).toBe(k.body);
  }
  const differences = pairs.map((p) => p.known.micros - p.unknown.micros);
  return {
    knownMedianMicros: median(pairs.map((p) => p.known.micros)),
    unknownMedianMicros: median(pairs.map((p) => p.unknown.micros)),
    medianDifferenceMicros: median(differences),
    z: signedRankZ(differences),
  };
}

const SIGNIFICANT_Z = 4;
const MATERIAL_FRACTION = 0.05;
const MATERIAL_MICROS = 50;

describe('refusing an unknown client takes as long as refusing a wrong secret', () => {
  it.each<[Method, number]>([
    ['client_secret_post', 43],
    ['client_secret_basic', 43],
    // Close to the 64 KiB body limit and, for Basic, to Node's 16 KiB header limit.
    ['client_secret_post', 60_000],
    ['client_secret_basic', 9_000],
  ])('%s with a %i-character secret', async (method, secretLength) => {
    const result = await compare(method, secretLength);
    const material = Math.max(MATERIAL_MICROS, MATERIAL_FRACTION * Math.min(result.knownMedianMicros, result.unknownMedianMicros));
    const isDistinguishable = Math.abs(result.z) > SIGNIFICANT_Z && Math.abs(result.medianDifferenceMicros) > material;
    // The figures are in the failure message, so that a failure says by how much and how surely.
    expect({ ...roundAll(result), isDistinguishable }).toEqual({ ...roundAll(result), isDistinguishable: false });
  }, 60_000);
});

function roundAll(result: Comparison): Record<string, number> {
  return Object.fromEntries(Object.entries(result).map(([name, value]) => [name, Math.round(value * 100) / 100]));
}
