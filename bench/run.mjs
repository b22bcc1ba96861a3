// `npm run bench`: the load benchmark of the hot paths (README, "Performance").
//
// The server runs as a real process on real PostgreSQL (DATABASE_URL, or a throwaway
// server started here), with rate limit and quota off, pinned to core 0; autocannon runs
// in its own process pinned to core 1 (when the machine has two). In the same run the
// ceiling is measured: jose signing with the same algorithm on the same core, just before
// and just after each scenario's load, averaged. Then the latency scenarios run again open
// loop (bench/open-loop.mjs) at OPEN_LOOP_SHARE of the saturation throughput just
// measured: p50/p99/p99.9 from each request's due time. Results go to
// bench/results/latest.json and latest.md (subset.* when BENCH_SCENARIOS is set).
//
// Environment: BENCH_DURATION (seconds per scenario, default 10), BENCH_SOAK (seconds of
// the memory run, default 60; 0 skips it), BENCH_CONNECTIONS (default 50),
// BENCH_SCENARIOS (comma-separated names to run a subset), BENCH_REPEAT (runs of each
// scenario, default 1; the table shows the median), BENCH_PROFILE (a directory for the
// servers' CPU profiles), BENCH_OPEN_LOOP (0 skips the open-loop runs), BENCH_NODE_FLAGS (node
// flags for the servers under test, space-separated).
import { execFileSync, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { REFERENCE_SCRIPT, es256AgainstReference, referenceLoadSpec, referenceScenarios } from './reference.mjs';
import { linkerReportLines, measureLinkerRate, walBytes } from './linker-rate.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const duration = Number(process.env.BENCH_DURATION ?? 10);
const soakSeconds = Number(process.env.BENCH_SOAK ?? 60);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const repeats = Number(process.env.BENCH_REPEAT ?? 1);
const only = process.env.BENCH_SCENARIOS?.split(',');
const cores = os.availableParallelism();
const pin = (core) => (cores >= 2 && fs.existsSync('/usr/bin/taskset') ? ['taskset', '-c', String(core)] : []);
// BENCH_PRIORITY=1 runs the server and the generator above PostgreSQL's priority (nice -10,
// as root): PostgreSQL, unpinned, then gets only the cycles they leave idle. Tried as a way
// to keep it off the server's core during a request; it starved the grants' round trips
// instead (bench/README.md), so all run at one priority unless asked.
const isPrioritized = process.env.BENCH_PRIORITY === '1' && process.getuid?.() === 0;
/** [command, args] of a Node process on `core`, at the priority above. */
function onCore(core, nodeArgs) {
  const prefix = [...(isPrioritized ? ['nice', '-n', '-10'] : []), ...pin(core)];
  return prefix.length ? [prefix[0], [...prefix.slice(1), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
}
const SERVER_CORE = 0;
const LOAD_CORE = 1;
const ADMIN = { id: '00000000-0000-4000-8000-0000000be4c8', secret: 'sk_live_benchmark-admin-secret-not-for-production' };
const AUDIENCE = 'https://idp.bench';
// Enough fresh ID tokens for /oidc/token at this rate; past it a token would be replayed
// and refused, which shows up as errors rather than passing unnoticed.
const TOKENS_PER_SECOND = Number(process.env.BENCH_ID_TOKENS_PER_SECOND ?? 1800);
// Latency is judged at a load the core can serve: this share of the saturation throughput.
const OPEN_LOOP_SHARE = 0.7;
const OPEN_LOOP_SCENARIOS = new Set(['token-rs256', 'token-es256', 'oidc-token', 'introspect']);
const isOpenLoopOn = process.env.BENCH_OPEN_LOOP !== '0';

function log(message) {
  process.stderr.write(`[bench] ${message}\n`);
}

// --- PostgreSQL -------------------------------------------------------------------------
let throwaway;
async function databaseUrl() {
  let adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const out = execFileSync(path.join(root, 'scripts/throwaway-postgres.sh'), ['start', '55460'], { encoding: 'utf8', env: { ...process.env, PG_DURABLE: '1' } });
    const vars = Object.fromEntries([...out.matchAll(/(\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
    throwaway = vars.PG_THROWAWAY_DIR;
    adminUrl = vars.DATABASE_URL;
    log(`started a throwaway PostgreSQL (durable settings) at ${adminUrl}`);
  }
  const name = `bench_${Date.now()}`;
  execFileSync('psql', [adminUrl, '-q', '-c', `create database ${name}`]);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

// --- A fake GitHub OIDC issuer, minting fresh single-use ID tokens ---------------------
async function startGitHubIssuer() {
  const { privateKey, publicKey } = await generateKeyPair('RS256');
  const kid = 'bench-key';
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const server = http.createServer((req, res) => {
    const issuer = `http://127.0.0.1:${server.address().port}`;
    res.setHeader('Content-Type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') return res.end(JSON.stringify({ issuer, jwks_uri: `${issuer}/.well-known/jwks` }));
    if (req.url === '/.well-known/jwks') return res.end(JSON.stringify({ keys: [jwk] }));
    res.statusCode = 404;
    res.end('{}');
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${server.address().port}`;
  // The push-to-main run the tests and docs use; iss, aud, jti and times are set per token.
  const { iss, aud, jti, iat, nbf, exp, ...claims } = JSON.parse(fs.readFileSync(path.join(root, 'action-fixtures/claims/push-main.json'), 'utf8'));
  const mint = () =>
    new SignJWT(claims)
      .setProtectedHeader({ alg: 'RS256', kid, typ: 'JWT' })
      .setIssuer(issuer)
      .setAudience(AUDIENCE)
      .setJti(crypto.randomUUID())
      .setIssuedAt()
      .setNotBefore(Math.floor(Date.now() / 1000) - 5)
      .setExpirationTime('10m')
      .sign(privateKey);
  return { issuer, jwk, mint, close: () => server.close() };
}

// --- The server under test ---------------------------------------------------------------
/** BENCH_PROFILE=dir: each server writes a V8 CPU profile there on exit (see bench/profile-summary.mjs). */
const profileFlags = () => (process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(process.env.BENCH_PROFILE)}`] : []);
/** BENCH_NODE_FLAGS: extra node flags for the servers under test (e.g. V8 heap sizes), to try one before it goes into the unit file. */
const nodeFlags = () => (process.env.BENCH_NODE_FLAGS ? process.env.BENCH_NODE_FLAGS.split(' ').filter(Boolean) : []);
/** Our server, or (`script`) the reference server, which prints the same "listening" line. */
function startServer(env, script = 'build/server/src/main.js') {
  const child = spawn(...onCore(SERVER_CORE, [...profileFlags(), ...nodeFlags(), path.join(root, script)]), {
    env: {
      PATH: process.env.PATH,
      PORT: '0',
      LOG_LEVEL: 'info',
      RATE_LIMIT_PER_MINUTE: '0',
      MONTHLY_TOKEN_LIMIT: '0',
      BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN.id,
      BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN.secret,
      OIDC_AUDIENCE: AUDIENCE,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const onData = (chunk) => {
      out += chunk;
      const match = /"port":(\d+)[^\n]*"msg":"listening"/.exec(out);
      if (!match) return;
      child.stdout.off('data', onData);
      child.stdout.resume(); // request logs are drained and dropped, as a log shipper would
      resolve({ child, url: `http://127.0.0.1:${match[1]}`, stop: () => new Promise((done) => { child.once('exit', done); child.kill('SIGTERM'); }) });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => reject(new Error(`server exited ${code}: ${out}`)));
  });
}

async function call(url, pathName, init) {
  const response = await fetch(url + pathName, init);
  const body = await response.json();
  if (!response.ok) throw new Error(`${pathName}: ${response.status} ${JSON.stringify(body)}`);
  return body;
}
const formPost = (params, token) => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/x-www-form-urlencoded', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  body: new URLSearchParams(params).toString(),
});
const jsonPost = (body, token) => ({
  method: 'POST',
  headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});

async function setUp(server) {
  const admin = (await call(server.url, '/api/v1/token', formPost({ grant_type: 'client_credentials', client_id: ADMIN.id, client_secret: ADMIN.secret }))).access_token;
  const agent = await call(server.url, '/api/v1/agents', jsonPost({ name: 'bench-agent', scopes: ['agents:read', 'tokens:read'] }, admin));
  const credential = await call(server.url, `/api/v1/agents/${agent.agentId}/credentials`, { method: 'POST', headers: { Authorization: `Bearer ${admin}` } });
  await call(server.url, '/api/v1/oidc/trust-policies', jsonPost({ provider: 'github', repository: 'octo-org/octo-repo', branch: 'main', agentId: agent.agentId }, admin));
  const agentToken = (await call(server.url, '/api/v1/token', formPost({ grant_type: 'client_credentials', client_id: agent.agentId, client_secret: credential.clientSecret }))).access_token;
  return { admin, agentId: agent.agentId, secret: credential.clientSecret, agentToken };
}

/** The fake GitHub issuer as a federation partner (its key inline) and a binding of the bench agent to its workflow. */
async function bindAsPartner(server, fixture, github) {
  const orgId = JSON.parse(Buffer.from(fixture.admin.split('.')[1], 'base64url').toString()).org_id;
  const partner = await call(server.url, '/api/v1/federation/partners', jsonPost({
    preset: 'custom', name: 'bench issuer', issuer: github.issuer, keys: { keys: [github.jwk] }, audiences: [AUDIENCE], algorithms: ['RS256'], singleUseJti: true, orgIds: [orgId],
  }, fixture.admin));
  const sub = JSON.parse(Buffer.from((await github.mint()).split('.')[1], 'base64url').toString()).sub;
  await call(server.url, '/api/v1/federation/bindings', jsonPost({ partnerId: partner.partnerId, agentId: fixture.agentId, conditions: [{ claim: 'sub', op: 'eq', value: sub }] }, fixture.admin));
}

/**
 * A receiver on loopback that answers each webhook after a second, an endpoint of the
 * bench's organization subscribed to agent.created, and 1,000 agents created: a backlog the
 * worker is still sending (16 at a time) while the scenario's load runs.
 */
async function queueWebhookBacklog(server, fixture) {
  let received = 0;
  const receiver = http.createServer((request, response) => {
    request.resume();
    request.on('end', () => setTimeout(() => {
      received += 1;
      response.writeHead(200).end();
    }, 1000));
  });
  await new Promise((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${receiver.address().port}/hooks`;
  await call(server.url, '/api/v1/webhooks', jsonPost({ url, eventTypes: ['agent.created'] }, fixture.admin));
  log('queueing 1,000 webhook events (agents created) for a receiver that answers after 1 s');
  for (let batch = 0; batch < 100; batch += 1) {
    await Promise.all(Array.from({ length: 10 }, (_, i) => call(server.url, '/api/v1/agents', jsonPost({ name: `backlog-${batch * 10 + i}` }, fixture.admin))));
  }
  return { close: () => { log(`the slow receiver got ${received} webhooks`); receiver.closeAllConnections(); receiver.close(); } };
}

/**
 * One autocannon run in its own process. Asynchronous: this process keeps serving the fake
 * GitHub issuer's JWKS and sampling the server's memory while the load runs.
 */
/** autocannon, closed loop: saturation throughput. */
function runLoad(spec) {
  return runGenerator('bench/load.mjs', spec);
}

/** The open-loop scheduler at `spec.rate`: latency at a fixed offered load. */
function runOpenLoop(spec) {
  return runGenerator('bench/open-loop.mjs', spec);
}

function runGenerator(script, spec) {
  const specFile = path.join(os.tmpdir(), `sentryagent-bench-${process.pid}.json`);
  fs.writeFileSync(specFile, JSON.stringify(spec));
  const child = spawn(...onCore(LOAD_CORE, [path.join(root, script), specFile]), { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (chunk) => (out += chunk));
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop())) : reject(new Error(`load generator exited ${code}`)))),
  );
}

function measureCeiling(alg) {
  return JSON.parse(execFileSync(...onCore(SERVER_CORE, [path.join(root, 'bench/sign-ceiling.mjs'), alg, '5']), { encoding: 'utf8' })).opsPerSecond;
}

function rssMiB(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return Math.round(Number(/VmRSS:\s+(\d+)/.exec(status)[1]) / 1024);
}

/** CPU seconds used so far by a process and its children (cluster workers), from /proc. */
function cpuSeconds(pid) {
  const children = fs
    .readdirSync(`/proc/${pid}/task`)
    .flatMap((task) => fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean));
  return [pid, ...children].reduce((sum, id) => sum + cpuTicks(fs.readFileSync(`/proc/${id}/stat`, 'utf8')), 0) / CLOCK_TICKS;
}
const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** utime + stime of a /proc/<pid>/stat line. */
function cpuTicks(stat) {
  const fields = stat.split(') ')[1].split(' ');
  return Number(fields[11]) + Number(fields[12]);
}

/**
 * CPU seconds used so far by every PostgreSQL process on this machine (the pool's
 * backends live through a scenario), to show what the bookkeeping costs the database.
 */
function postgresCpuSeconds() {
  let ticks = 0;
  for (const id of fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      const stat = fs.readFileSync(`/proc/${id}/stat`, 'utf8');
      if (stat.includes(' (postgres) ')) ticks += cpuTicks(stat);
    } catch {
      // the process ended between listing and reading
    }
  }
  return ticks / CLOCK_TICKS;
}

/** RSS of the server process every second while `work` runs. */
async function withRss(pid, work) {
  const samples = [];
  const timer = setInterval(() => samples.push(rssMiB(pid)), 1000);
  try {
    return { result: await work(), samples };
  } finally {
    clearInterval(timer);
  }
}

// --- Scenarios ---------------------------------------------------------------------------
const scenarios = [
  { name: 'token-rs256', title: 'POST /token (RS256)', alg: 'RS256', ceiling: 'RS256', judgedBy: 'ratio', target: (r, c) => r >= 0.85 * c, targetText: '≥ 85% of raw RS256 signing' },
  // node:http alone (bench/http-floor.mjs), after POST /token RS256: what any Node server pays beyond the signature
  // bounds the ratio to raw signing at sign / (sign + floor), whatever the framework and the database cost.
  {
    name: 'http-floor',
    title: 'node:http alone: the form body read, a fixed token-sized answer (the floor under any Node server)',
    alg: 'RS256',
    ceiling: 'RS256',
    script: 'bench/http-floor.mjs',
    targetText: 'reported',
    target: (_r, _c, results, self) => {
      const ours = results.find((x) => x.name === 'token-rs256');
      const signMs = 1000 / self.ceilingOpsPerSecond;
      self.ratioBound = Number((signMs / (signMs + self.serverCpuMsPerRequest)).toFixed(2));
      self.targetText = `reported: an RS256 grant on node:http reaches at most ${self.ratioBound} of raw signing${ours ? ` (POST /token RS256: ${ours.ratioToCeiling})` : ''}`;
      return true;
    },
  },
  // oidc-provider's ES256 and RS256 (bench/reference.mjs): before POST /token ES256, which is judged against the first.
  ...referenceScenarios,
  { name: 'token-es256', title: 'POST /token (ES256)', alg: 'ES256', ceiling: 'ES256', ...es256AgainstReference({ target: (r) => r >= 3000, targetText: '≥ 3,000 req/s' }) },
  { name: 'oidc-token', title: 'POST /oidc/token (RS256)', alg: 'RS256', ceiling: 'RS256', judgedBy: 'ratio', target: (_r, _c, results, self) => self.ratioToCeiling >= 0.8 * (results.find((x) => x.name === 'token-rs256')?.ratioToCeiling ?? Infinity), targetText: '≥ 80% of POST /token RS256 (each against its own ceiling)' },
  { name: 'token-exchange', title: 'POST /token, RFC 8693 token exchange (RS256)', alg: 'RS256', ceiling: 'RS256', judgedBy: 'ratio', target: (_r, _c, results, self) => self.ratioToCeiling >= 0.8 * (results.find((x) => x.name === 'token-rs256')?.ratioToCeiling ?? Infinity), targetText: '≥ 80% of POST /token RS256 (each against its own ceiling)' },
  {
    name: 'token-webhook-backlog',
    title: 'POST /token (RS256), 1,000 webhook deliveries queued for a slow receiver',
    alg: 'RS256',
    ceiling: 'RS256',
    judgedBy: 'ratio',
    target: (_r, _c, results, self) => self.ratioToCeiling >= 0.9 * (results.find((x) => x.name === 'token-rs256')?.ratioToCeiling ?? Infinity),
    targetText: '≥ 90% of POST /token RS256 without the backlog (each against its own ceiling)',
  },
  { name: 'introspect', title: 'POST /token/introspect (RS256)', alg: 'RS256', ceiling: 'RS256', target: (r) => r >= 5000, targetText: '≥ 5,000 req/s' },
  { name: 'healthz', title: 'GET /healthz (the HTTP, Koa and logging floor)', alg: 'RS256', ceiling: 'RS256', target: () => true, targetText: 'reported' },
  { name: 'token-rs256-workers', title: 'POST /token (RS256), WORKERS=2, unpinned', alg: 'RS256', ceiling: 'RS256', workers: 2, target: () => true, targetText: 'reported' },
];

function loadSpec(scenario, server, fixture, github) {
  const base = { url: server.url, connections, duration };
  if (scenario.reference) return referenceLoadSpec(base);
  if (scenario.script) return { ...base, method: 'POST', path: '/api/v1/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `grant_type=client_credentials&client_id=${ADMIN.id}&client_secret=${ADMIN.secret}` };
  if (scenario.name.startsWith('token-') && scenario.name !== 'token-exchange') {
    return { ...base, method: 'POST', path: '/api/v1/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'client_credentials', client_id: fixture.agentId, client_secret: fixture.secret }).toString() };
  }
  if (scenario.name === 'healthz') return { ...base, method: 'GET', path: '/healthz' };
  if (scenario.name === 'token-exchange') {
    const exchange = (token) =>
      new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', client_id: fixture.agentId, subject_token: token, subject_token_type: 'urn:ietf:params:oauth:token-type:jwt' }).toString();
    return { ...base, method: 'POST', path: '/api/v1/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, bodies: github.tokens.map(exchange) };
  }
  if (scenario.name === 'introspect') {
    return { ...base, method: 'POST', path: '/api/v1/token/introspect', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Bearer ${fixture.agentToken}` }, body: `token=${fixture.agentToken}` };
  }
  return { ...base, method: 'POST', path: '/api/v1/oidc/token', headers: { 'content-type': 'application/json' }, bodies: github.tokens.map((token) => JSON.stringify({ token, agentId: fixture.agentId })) };
}

async function main() {
  execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: root, stdio: 'inherit' });
  const url = await databaseUrl();
  const github = await startGitHubIssuer();
  const ceilings = {};
  const results = [];
  try {
    for (const scenario of scenarios.filter((s) => !only || only.includes(s.name))) {
      // Webhook receivers on loopback (the backlog scenario's slow one) are allowed as the tests allow theirs.
      const env = { DATABASE_URL: url, SIGNING_ALG: scenario.alg, GITHUB_OIDC_ISSUER: github.issuer, WORKERS: String(scenario.workers ?? 1), EGRESS_ALLOW_CIDRS: '127.0.0.0/8' };
      let slowReceiver;
      const script = scenario.script ?? (scenario.reference ? REFERENCE_SCRIPT : undefined);
      const server = script ? await startServer(env, script) : scenario.workers ? await startUnpinned(env) : await startServer(env);
      try {
        const fixture = script ? {} : await setUp(server);
        let warmUpTokens = [];
        let tokensOfRun = () => [];
        // The same single-use ID tokens, as a federation partner's (inline keys, single-use jti), for the token exchange.
        if (scenario.name === 'token-exchange') await bindAsPartner(server, fixture, github);
        if (scenario.name === 'token-webhook-backlog') slowReceiver = await queueWebhookBacklog(server, fixture);
        if (scenario.name === 'oidc-token' || scenario.name === 'token-exchange') {
          log('minting single-use GitHub ID tokens');
          const perRun = duration * TOKENS_PER_SECOND;
          // Closed-loop runs first, then (for oidc-token) as many open-loop runs: each a slice of its own.
          const runsNeedingTokens = repeats * (isOpenLoopOn && OPEN_LOOP_SCENARIOS.has(scenario.name) ? 2 : 1);
          const minted = await Promise.all(Array.from({ length: 2 * TOKENS_PER_SECOND + runsNeedingTokens * perRun }, () => github.mint()));
          warmUpTokens = minted.slice(0, 2 * TOKENS_PER_SECOND);
          tokensOfRun = (run) => minted.slice(2 * TOKENS_PER_SECOND + run * perRun, 2 * TOKENS_PER_SECOND + (run + 1) * perRun);
        }
        await runLoad({ ...loadSpec(scenario, server, fixture, { tokens: warmUpTokens }), duration: 2 });
        const runs = [];
        for (let run = 0; run < repeats; run += 1) {
          // The machine's speed drifts between minutes, so the ceiling is measured on either
          // side of the load and averaged: the ratio compares like with like.
          const ceilingBefore = measureCeiling(scenario.ceiling);
          log(`${scenario.title}: ${duration} s, ${connections} connections${repeats > 1 ? `, run ${run + 1} of ${repeats}` : ''}`);
          const walBefore = walBytes(url);
          const cpuBefore = cpuSeconds(server.child.pid);
          const postgresCpuBefore = postgresCpuSeconds();
          const { result, samples } = await withRss(server.child.pid, async () => runLoad(loadSpec(scenario, server, fixture, { tokens: tokensOfRun(run) })));
          // CPU per request does not depend on what else runs on the machine, but like the
          // ceiling it follows the host's speed of the moment.
          const serverCpuMsPerRequest = Number((((cpuSeconds(server.child.pid) - cpuBefore) * 1000) / result.total).toFixed(3));
          const postgresCpuMsPerRequest = Number((((postgresCpuSeconds() - postgresCpuBefore) * 1000) / result.total).toFixed(3));
          // The whole cluster's WAL, the background linker's and autovacuum's included.
          const walBytesPerRequest = Math.round((walBytes(url) - walBefore) / result.total);
          const ceilingAfter = measureCeiling(scenario.ceiling);
          const ceiling = Math.round((ceilingBefore + ceilingAfter) / 2);
          (ceilings[scenario.ceiling] ??= []).push(ceilingBefore, ceilingAfter);
          runs.push({ ...result, serverCpuMsPerRequest, postgresCpuMsPerRequest, walBytesPerRequest, ceilingOpsPerSecond: ceiling, ratioToCeiling: Number((result.requestsPerSecond / ceiling).toFixed(2)), rssMiB: samples.at(-1) ?? rssMiB(server.child.pid) });
          log(JSON.stringify(runs.at(-1)));
        }
        // The median run, by what the target judges: the ratio to the ceiling, or req/s.
        const key = (run) => (scenario.judgedBy === 'ratio' ? run.ratioToCeiling : run.requestsPerSecond);
        const median = [...runs].sort((a, b) => key(a) - key(b))[Math.floor((runs.length - 1) / 2)];
        const entry = { name: scenario.name, title: scenario.title, ...median, requestsPerCpuSecond: Math.round(1000 / median.serverCpuMsPerRequest), targetText: scenario.targetText, runs };
        entry.meetsTarget = scenario.target(entry.requestsPerSecond, entry.ceilingOpsPerSecond, results, entry) && entry.errors === 0 && entry.p99Ms < 50;
        if (isOpenLoopOn && OPEN_LOOP_SCENARIOS.has(scenario.name)) {
          entry.openLoop = await measureOpenLoop(scenario, server, fixture, Math.round(OPEN_LOOP_SHARE * entry.requestsPerSecond), (run) => tokensOfRun(repeats + run));
        }
        results.push(entry);
      } finally {
        await server.stop();
        slowReceiver?.close();
      }
    }
    const soak = soakSeconds > 0 && (!only || only.includes('soak')) ? await runSoak(url, github) : undefined;
    // The audit chain's linker on a backlog, no grants running (bench/linker-rate.mjs).
    const linker = !only || only.includes('audit-linker')
      ? await measureLinkerRate({ root, url, env: { DATABASE_URL: url, GITHUB_OIDC_ISSUER: github.issuer }, repeats, results, startServer, setUp, call, cpuSeconds, postgresCpuSeconds, scrapeMetrics, log,
        adminToken: async (server) => (await call(server.url, '/api/v1/token', formPost({ grant_type: 'client_credentials', client_id: ADMIN.id, client_secret: ADMIN.secret }))).access_token })
      : undefined;
    writeReport({ ceilings, results, soak, linker });
  } finally {
    github.close();
    if (throwaway) execFileSync(path.join(root, 'scripts/throwaway-postgres.sh'), ['stop', throwaway]);
  }
}

/**
 * Latency at a fixed offered rate (`rate`, a share of the saturation throughput just
 * measured), open loop, `repeats` runs; the median run by p99. Target: p99 ≤ 20 ms and
 * p99.9 ≤ 50 ms.
 */
async function measureOpenLoop(scenario, server, fixture, rate, tokensOfRun) {
  const runs = [];
  for (let run = 0; run < repeats; run += 1) {
    log(`${scenario.title}: open loop at ${rate} req/s for ${duration} s${repeats > 1 ? `, run ${run + 1} of ${repeats}` : ''}`);
    // Reading /metrics resets the event-loop delay histogram: what the next read shows is this run's.
    const before = await scrapeMetrics(server.url);
    const cpuBefore = cpuSeconds(server.child.pid);
    const startedMs = Date.now();
    const result = await runOpenLoop({ ...loadSpec(scenario, server, fixture, { tokens: tokensOfRun(run) }), rate, duration });
    const serverBusy = (cpuSeconds(server.child.pid) - cpuBefore) / ((Date.now() - startedMs) / 1000);
    const after = await scrapeMetrics(server.url);
    // prom-client samples the event loop every 10 ms, and a sample is the whole timer delay: 10 ms is no delay.
    Object.assign(result, {
      serverCpuShare: Number(serverBusy.toFixed(2)),
      serverEventLoopDelayP99Ms: Math.round(after.nodejs_eventloop_lag_p99_seconds * 1000),
      serverEventLoopDelayMaxMs: Math.round(after.nodejs_eventloop_lag_max_seconds * 1000),
      serverGcMs: Math.round((sumOf(after, 'nodejs_gc_duration_seconds_sum') - sumOf(before, 'nodejs_gc_duration_seconds_sum')) * 1000),
      serverGcCount: sumOf(after, 'nodejs_gc_duration_seconds_count') - sumOf(before, 'nodejs_gc_duration_seconds_count'),
      ...statementsOfRun(before, after),
    });
    runs.push(result);
    log(JSON.stringify(result));
  }
  const median = [...runs].sort((a, b) => (a.p99Ms ?? Infinity) - (b.p99Ms ?? Infinity))[Math.floor((runs.length - 1) / 2)];
  return { ...median, meetsTarget: median.errors === 0 && median.p99Ms !== null && median.p99Ms <= 20 && median.p999Ms !== null && median.p999Ms <= 50, runs };
}

/** The server's Prometheus samples, name{labels} → value. */
async function scrapeMetrics(url) {
  // A connection of its own each time: a kept-alive one may be closed by the server (idle) just as it is reused.
  const text = await new Promise((resolve, reject) =>
    http
      .get(`${url}/metrics`, { agent: false }, (response) => {
        let body = '';
        response.setEncoding('utf8').on('data', (chunk) => (body += chunk)).on('end', () => resolve(body)).on('error', reject);
      })
      .on('error', reject),
  );
  const samples = {};
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([-0-9.e+]+|NaN)$/.exec(line);
    if (match) samples[match[1] + (match[2] ?? '')] = Number(match[3]);
  }
  return samples;
}

/**
 * The hot statement of the run (the one with most round trips: issue_grants for a grant,
 * token_state for introspection) between two scrapes: round trips, mean requests per round
 * trip, mean wait, and the share of round trips over 10 and 25 ms: how much of a tail is the
 * database's (the statement's wait includes the pool's).
 */
function statementsOfRun(before, after) {
  const delta = (key) => (after[key] ?? 0) - (before[key] ?? 0);
  const names = [...new Set(Object.keys(after).map((key) => /^sentryagent_db_statement_duration_seconds_count\{statement="([^"]+)"\}$/.exec(key)?.[1]).filter(Boolean))];
  const count = (name) => delta(`sentryagent_db_statement_duration_seconds_count{statement="${name}"}`);
  const name = names.sort((a, b) => count(b) - count(a))[0];
  if (!name || count(name) === 0) return {};
  const roundTrips = count(name);
  const within = (le) => delta(`sentryagent_db_statement_duration_seconds_bucket{le="${le}",statement="${name}"}`);
  return {
    statement: name,
    statementRoundTrips: roundTrips,
    statementMeanBatch: Number((delta(`sentryagent_db_statement_batch_size_sum{statement="${name}"}`) / roundTrips).toFixed(1)),
    statementMeanMs: Number(((delta(`sentryagent_db_statement_duration_seconds_sum{statement="${name}"}`) * 1000) / roundTrips).toFixed(2)),
    statementOver10MsShare: Number((1 - within('0.01') / roundTrips).toFixed(3)),
    statementOver25MsShare: Number((1 - within('0.025') / roundTrips).toFixed(3)),
  };
}

/** The sum of a metric over its label sets. */
const sumOf = (samples, name) => Object.entries(samples).filter(([key]) => key === name || key.startsWith(`${name}{`)).reduce((sum, [, value]) => sum + value, 0);

async function startUnpinned(env) {
  const server = await startServer(env);
  if (cores >= 2 && fs.existsSync('/usr/bin/taskset')) execFileSync('taskset', ['-a', '-p', '-c', `0-${cores - 1}`, String(server.child.pid)], { stdio: 'ignore' });
  return server;
}

/** Resident memory over a long run of POST /token: it must stay flat, not grow. */
async function runSoak(url, github) {
  const server = await startServer({ DATABASE_URL: url, SIGNING_ALG: 'RS256', GITHUB_OIDC_ISSUER: github.issuer });
  try {
    const fixture = await setUp(server);
    log(`memory soak: POST /token for ${soakSeconds} s`);
    await runLoad({ ...loadSpec(scenarios[0], server, fixture, github), duration: 5 });
    const { result, samples } = await withRss(server.child.pid, async () => runLoad({ ...loadSpec(scenarios[0], server, fixture, github), duration: soakSeconds }));
    const firstQuarter = samples.slice(0, Math.max(1, Math.floor(samples.length / 4)));
    const lastQuarter = samples.slice(-Math.max(1, Math.floor(samples.length / 4)));
    const mean = (values) => Math.round(values.reduce((a, b) => a + b, 0) / values.length);
    return { seconds: soakSeconds, requestsPerSecond: result.requestsPerSecond, errors: result.errors, rssStartMiB: mean(firstQuarter), rssEndMiB: mean(lastQuarter), rssMaxMiB: Math.max(...samples) };
  } finally {
    await server.stop();
  }
}

function writeReport(report) {
  const machine = `${os.cpus()[0].model.trim()}, ${cores} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${new Date().toISOString().slice(0, 10)}`;
  const lines = [
    `Machine: ${machine}. Server pinned to one core, autocannon (${connections} connections) on the other; PostgreSQL on the same machine, unpinned${isPrioritized ? ', below the server and the generator (nice -10 for both)' : ', all at one priority'}.`,
    '',
    `| scenario | req/s | ${repeats > 1 ? 'req/s of each run | ' : ''}ceiling (raw jose sign/s) | ratio | p50 ms | p99 ms | errors | server CPU ms/req | PostgreSQL CPU ms/req | target | met |`,
    `| --- | ---: | ${repeats > 1 ? '---: | ' : ''}---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |`,
    ...report.results.map((r) => `| ${r.title} | ${r.requestsPerSecond} | ${repeats > 1 ? `${r.runs.map((run) => run.requestsPerSecond).join(', ')} | ` : ''}${r.ceilingOpsPerSecond} | ${r.ratioToCeiling} | ${r.p50Ms} | ${r.p99Ms} | ${r.errors} | ${r.serverCpuMsPerRequest} | ${r.postgresCpuMsPerRequest} | ${r.targetText}, p99 < 50 ms, no errors | ${r.meetsTarget ? 'yes' : 'no'} |`),
  ];
  if (report.results.length > 0) lines.push('', `WAL written per request (the cluster's, linking included): ${report.results.map((r) => `${r.title} ${r.walBytesPerRequest} bytes`).join('; ')}.`);
  if (report.linker) lines.push(...linkerReportLines(report.linker, repeats));
  if (repeats > 1) lines.splice(1, 0, '', `Each scenario ran ${repeats} times; the row shows the median run (by ratio for the ratio targets, by req/s for the others).`);
  const openLoop = report.results.filter((r) => r.openLoop);
  if (openLoop.length > 0) {
    lines.push(
      '',
      `Latency at ${Math.round(OPEN_LOOP_SHARE * 100)} % of each scenario's saturation throughput above, open loop (bench/open-loop.mjs: request i sent at start + i/rate, its latency measured from that due time), ${duration} s${repeats > 1 ? `, the median of ${repeats} runs by p99` : ''}:`,
      '',
      '| scenario | offered req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | p99 of each run | server CPU busy | server event-loop delay p99 / max ms | server GC ms (count) | generator late by (max ms) | database round trip: mean ms, requests, share > 10 / 25 ms | errors | target | met |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |',
      ...openLoop.map(({ title, openLoop: o }) => `| ${title} | ${o.rate} | ${o.p50Ms} | ${o.p90Ms} | ${o.p99Ms} | ${o.p999Ms} | ${o.maxMs} | ${o.runs.map((run) => run.p99Ms).join(', ')} | ${Math.round(o.serverCpuShare * 100)} % | ${o.serverEventLoopDelayP99Ms} / ${o.serverEventLoopDelayMaxMs} | ${o.serverGcMs} (${o.serverGcCount}) | ${o.lateDispatchMs} | ${o.statement ? `${o.statement}: ${o.statementMeanMs}, ${o.statementMeanBatch}, ${Math.round(o.statementOver10MsShare * 100)} % / ${Math.round(o.statementOver25MsShare * 100)} %` : ''} | ${o.errors} | p99 ≤ 20 ms, p99.9 ≤ 50 ms | ${o.meetsTarget ? 'yes' : 'no'} |`),
    );
  }
  if (report.soak) {
    lines.push('', `Memory over a ${report.soak.seconds} s run of POST /token: RSS ${report.soak.rssStartMiB} MiB in the first quarter, ${report.soak.rssEndMiB} MiB in the last (max ${report.soak.rssMaxMiB} MiB), ${report.soak.requestsPerSecond} req/s, ${report.soak.errors} errors.`);
  }
  fs.mkdirSync(path.join(root, 'bench/results'), { recursive: true });
  // A subset run (BENCH_SCENARIOS) must not replace the full table the README quotes.
  const out = path.join(root, 'bench/results', only ? 'subset' : 'latest');
  fs.writeFileSync(`${out}.json`, JSON.stringify({ machine, connections, durationSeconds: duration, isPrioritized, ...report }, null, 2) + '\n');
  fs.writeFileSync(`${out}.md`, lines.join('\n') + '\n');
  process.stdout.write(lines.join('\n') + '\n');
}

main().catch((error) => {
  process.stderr.write(`[bench] failed: ${error.stack}\n`);
  if (throwaway) execFileSync(path.join(root, 'scripts/throwaway-postgres.sh'), ['stop', throwaway]);
  process.exit(1);
});
