// The reference of issue 19's target 3: oidc-provider (bench/reference-oidc-provider.mjs)
// issuing client-credentials JWT access tokens, run by bench/run.mjs like our server (pinned
// to the same core, the same Node, the same autocannon load and ceilings). POST /token
// ES256 is judged against it in the same run, since the machine's speed drifts between
// runs; RS256 is compared, not judged.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REFERENCE_SCRIPT = 'bench/reference-oidc-provider.mjs';
export const REFERENCE_CLIENT = { id: 'bench-reference-client', secret: 'bench-reference-secret-not-for-production-0123456789' };
// The bench agent's scopes: the reference's tokens carry the same scope claim as ours.
export const REFERENCE_SCOPE = 'agents:read tokens:read';
export const REFERENCE_AUDIENCE = 'https://idp.bench';
const ES256_FACTOR = 2.0;

/** The installed (exact-pinned) version, for the row's title; the bench still runs the other scenarios without it. */
function referenceVersion() {
  try {
    const manifest = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../node_modules/oidc-provider/package.json');
    return JSON.parse(fs.readFileSync(manifest, 'utf8')).version;
  } catch {
    return '(not installed)';
  }
}

/** Ours against the reference, by the median runs' throughput and server CPU per request. */
function comparison(ours, reference) {
  return {
    name: reference.name,
    requestsPerSecond: reference.requestsPerSecond,
    timesThroughput: Number((ours.requestsPerSecond / reference.requestsPerSecond).toFixed(2)),
    // The server's core per token (PostgreSQL's, on the other core, is not in it): what
    // throughput would show if nothing but the server's core were the limit.
    timesServerCpu: Number((ours.serverCpuMsPerRequest / reference.serverCpuMsPerRequest).toFixed(2)),
  };
}

const describe = (c) => `${c.timesThroughput}× its req/s, ${c.timesServerCpu}× its server CPU per request`;

// The reference rows run before POST /token ES256 (their place in run.mjs's list), so the
// ES256 target can see the reference measured in the same run; the RS256 row, after
// POST /token RS256, reports how ours compares.
export const referenceScenarios = ['ES256', 'RS256'].map((alg) => ({
  name: `reference-${alg.toLowerCase()}`,
  title: `oidc-provider ${referenceVersion()} client credentials, JWT access token (${alg})`,
  alg,
  ceiling: alg,
  reference: true,
  targetText: 'reported (the reference)',
  target: (_r, _c, results, self) => {
    const ours = results.find((x) => x.name === `token-${alg.toLowerCase()}`);
    if (ours) {
      ours.reference = comparison(ours, self);
      self.targetText = `reported (the reference): POST /token ${alg} at ${describe(ours.reference)}`;
    }
    return true;
  },
}));

/**
 * POST /token ES256's target: ≥ 2.0× the reference's ES256 rate in the same run; without a
 * reference row (a BENCH_SCENARIOS subset without it), the absolute target it had before.
 */
export function es256AgainstReference(fallback) {
  return {
    targetText: fallback.targetText,
    target: (r, c, results, self) => {
      const reference = results.find((x) => x.name === 'reference-es256');
      if (!reference) return fallback.target(r, c, results, self);
      self.reference = comparison(self, reference);
      self.targetText = `≥ ${ES256_FACTOR.toFixed(1)}× oidc-provider ES256 (${reference.requestsPerSecond} req/s in this run): ${describe(self.reference)}`;
      return r >= ES256_FACTOR * reference.requestsPerSecond;
    },
  };
}

/** The reference's request: the client's credentials in the form body, as the bench agent sends ours. */
export function referenceLoadSpec(base) {
  const body = new URLSearchParams({ grant_type: 'client_credentials', client_id: REFERENCE_CLIENT.id, client_secret: REFERENCE_CLIENT.secret, scope: REFERENCE_SCOPE }).toString();
  return { ...base, method: 'POST', path: '/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body };
}
