// The `audit-linker` scenario of `npm run bench` (issue 19, target 5): the audit chain's
// linker at its maximum rate on PostgreSQL, against the grant rate it has to keep up with.
//
// The chain is one serialisation point for every instance: each event is linked by one
// linker, in order, under an advisory lock. So the rate that matters is one server's,
// with nothing else to do: grants stopped and a backlog of BACKLOG unlinked events. The
// backlog is inserted with the server stopped (one `insert … select generate_series`,
// each row shaped like the `token.issued` row a client-credentials grant writes, copied
// from a real one), then vacuumed so that every run starts from the same table; then the
// server starts and links it. The rate is timed from the first link seen to the last:
// `max(chain_seq)` (a backward scan of its unique index) polled every POLL_MS on a
// connection of its own. After each run the whole chain is verified over the API.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const BACKLOG = Number(process.env.BENCH_LINKER_BACKLOG ?? 200_000);
const POLL_MS = 10;
const LINK_TIMEOUT_MS = 600_000;
const TARGET_HEADROOM = 5;

/** The cluster's WAL position in bytes: the difference of two is the WAL written between them. */
export function walBytes(url) {
  return Number(execFileSync('psql', [url, '-Atqc', "select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')"], { encoding: 'utf8' }).trim());
}

/**
 * `deps`: run.mjs's own helpers (startServer, setUp, adminToken, call, cpuSeconds,
 * postgresCpuSeconds, scrapeMetrics, log), the server's environment, `repeats`, `results` (the grant
 * scenarios of this run) and `root`.
 */
export async function measureLinkerRate(deps) {
  const { url, env, repeats, log } = deps;
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { LINK_BATCH_SIZE } = await import(path.join(deps.root, 'build/server/src/audit/audit-chain.js'));
    await prepareTemplateEvent(deps, db);
    const runs = [];
    for (let run = 0; run < repeats; run += 1) {
      log(`audit linker: a backlog of ${BACKLOG.toLocaleString('en-US')} events${repeats > 1 ? `, run ${run + 1} of ${repeats}` : ''}`);
      runs.push(await linkOneBacklog(deps, db, LINK_BATCH_SIZE));
      log(JSON.stringify(runs.at(-1)));
    }
    const median = [...runs].sort((a, b) => a.eventsPerSecond - b.eventsPerSecond)[Math.floor((runs.length - 1) / 2)];
    const grants = fastestGrantRate(deps.results, deps.root);
    const headroom = grants ? Number((median.eventsPerSecond / grants.requestsPerSecond).toFixed(1)) : null;
    return { backlog: BACKLOG, ...median, grants, headroom, meetsTarget: headroom !== null && headroom >= TARGET_HEADROOM && runs.every((r) => r.chainValid), runs };
  } finally {
    await db.end();
  }
}

/** A server run to migrate the database and make one real grant, whose audit row the backlog copies. */
async function prepareTemplateEvent(deps, db) {
  const server = await deps.startServer(deps.env);
  try {
    await deps.setUp(server);
    await waitUntil(async () => (await unlinkedCount(db)) === 0);
  } finally {
    await server.stop();
  }
}

async function linkOneBacklog(deps, db, batchSize) {
  await insertBacklog(db);
  const headBefore = await chainHead(db);
  const server = await deps.startServer(deps.env);
  try {
    await deps.scrapeMetrics(server.url); // resets the event-loop delay histogram
    const timing = await timeLinking(deps, db, server, headBefore);
    const metrics = await deps.scrapeMetrics(server.url);
    const verification = await verifyChain(deps, server);
    const { linked, seconds } = timing;
    return {
      eventsPerSecond: Math.round(linked / seconds),
      linked,
      seconds: Number(seconds.toFixed(2)),
      serverCpuMsPerEvent: Number(((timing.serverCpuSeconds * 1000) / linked).toFixed(4)),
      postgresCpuMsPerEvent: Number(((timing.postgresCpuSeconds * 1000) / linked).toFixed(4)),
      walBytesPerEvent: Math.round(timing.walBytes / linked),
      batchSize,
      msPerBatch: Number(((seconds * 1000 * batchSize) / linked).toFixed(1)),
      // prom-client samples every 10 ms and reports the whole timer delay: 10 ms is no delay.
      eventLoopDelayMaxMs: Math.round(metrics.nodejs_eventloop_lag_max_seconds * 1000),
      chainValid: verification.valid,
      chainChecked: verification.checked,
      verifySeconds: verification.seconds,
    };
  } finally {
    await server.stop();
  }
}

/**
 * BACKLOG copies of the last client-credentials `token.issued` row, each with its own jti,
 * as `issue_grants` writes them (data: jti, scope, grantType, credentialId), then a vacuum
 * so that the previous run's dead rows do not weigh on this one.
 */
async function insertBacklog(db) {
  const { rowCount } = await db.query(
    `insert into audit_events (type, agent_id, org_id, actor, data)
     select e.type, e.agent_id, e.org_id, e.actor,
            jsonb_build_object('jti', gen_random_uuid(), 'scope', e.data->'scope', 'grantType', e.data->'grantType', 'credentialId', e.data->'credentialId')
       from (select * from audit_events where type = 'token.issued' and data ? 'credentialId' order by id desc limit 1) e
      cross join generate_series(1, $1::int)`,
    [BACKLOG],
  );
  if (rowCount !== BACKLOG) throw new Error(`audit linker: inserted ${rowCount} events, not ${BACKLOG}: no token.issued row to copy`);
  await db.query('vacuum analyze audit_events');
}

/** From the first link seen to the last; CPU and WAL over the same stretch. */
async function timeLinking(deps, db, server, headBefore) {
  const deadline = Date.now() + LINK_TIMEOUT_MS;
  const sample = async (linked) => ({ ms: performance.now(), linked, serverCpu: deps.cpuSeconds(server.child.pid), postgresCpu: deps.postgresCpuSeconds(), wal: await walOf(db) });
  let start;
  for (;;) {
    const linked = (await chainHead(db)) - headBefore;
    if (linked > 0 && !start) start = await sample(linked);
    if (linked >= BACKLOG) {
      const end = await sample(linked);
      return {
        linked: end.linked - start.linked,
        seconds: (end.ms - start.ms) / 1000,
        serverCpuSeconds: end.serverCpu - start.serverCpu,
        postgresCpuSeconds: end.postgresCpu - start.postgresCpu,
        walBytes: end.wal - start.wal,
      };
    }
    if (Date.now() > deadline) throw new Error(`audit linker: ${linked} of ${BACKLOG} events linked after ${LINK_TIMEOUT_MS / 1000} s`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function walOf(db) {
  return Number((await db.query("select pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') as bytes")).rows[0].bytes);
}

async function chainHead(db) {
  return Number((await db.query('select coalesce(max(chain_seq), 0) as head from audit_events')).rows[0].head);
}

async function unlinkedCount(db) {
  return Number((await db.query('select count(*) as n from audit_events where chain_seq is null')).rows[0].n);
}

async function waitUntil(condition) {
  const deadline = Date.now() + LINK_TIMEOUT_MS;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('audit linker: timed out waiting for the chain');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** GET /api/v1/audit/verify as the platform's admin: a fast linker that breaks the chain is worthless. */
async function verifyChain(deps, server) {
  const admin = await deps.adminToken(server);
  const startedMs = performance.now();
  const body = await deps.call(server.url, '/api/v1/audit/verify', { headers: { Authorization: `Bearer ${admin}` } });
  return { valid: body.valid === true, checked: body.checked, seconds: Number(((performance.now() - startedMs) / 1000).toFixed(1)) };
}

/** The fastest grant scenario of this run, else of bench/results/latest.json. */
function fastestGrantRate(results, root) {
  const isGrant = (r) => /token/.test(r.name) && r.name !== 'introspect';
  const pick = (list, source) => {
    const best = list.filter(isGrant).sort((a, b) => b.requestsPerSecond - a.requestsPerSecond)[0];
    return best && { name: best.name, title: best.title, requestsPerSecond: best.requestsPerSecond, source };
  };
  const latest = path.join(root, 'bench/results/latest.json');
  return pick(results, 'this run') ?? (fs.existsSync(latest) ? pick(JSON.parse(fs.readFileSync(latest, 'utf8')).results ?? [], 'bench/results/latest.json') : undefined);
}

/** The report's lines for the linker. */
export function linkerReportLines(linker, repeats) {
  const l = linker;
  const against = l.grants ? `${l.grants.title} at ${l.grants.requestsPerSecond} req/s (${l.grants.source})` : 'no grant rate known';
  return [
    '',
    `Audit chain linker (bench/linker-rate.mjs): ${l.backlog.toLocaleString('en-US')} unlinked \`token.issued\` events inserted with the server stopped, then linked by one server (core 0) with no grants running; timed from the first link to the last${repeats > 1 ? `, the median of ${repeats} runs by rate` : ''}. Headroom against ${against}:`,
    '',
    '| linked events/s | events/s of each run | server CPU ms/event | PostgreSQL CPU ms/event | WAL bytes/event | batch | ms per batch | event-loop delay max ms | chain verified | headroom | target | met |',
    '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- | --- |',
    `| ${l.eventsPerSecond} | ${l.runs.map((r) => r.eventsPerSecond).join(', ')} | ${l.serverCpuMsPerEvent} | ${l.postgresCpuMsPerEvent} | ${l.walBytesPerEvent} | ${l.batchSize} | ${l.msPerBatch} | ${l.eventLoopDelayMaxMs} | ${l.runs.every((r) => r.chainValid) ? 'valid' : 'BROKEN'} (${l.chainChecked} events, ${l.verifySeconds} s) | ${l.headroom ?? '–'}× | ≥ ${TARGET_HEADROOM}× the fastest grant rate | ${l.meetsTarget ? 'yes' : 'no'} |`,
  ];
}
