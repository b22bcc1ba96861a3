/**
 * The audit log is a hash chain: each linked event stores the hash of its predecessor
 * and its own hash over (seq, prev hash, content, organization). Requests only append unlinked rows
 * (one insert, no lock); the linker gives pending rows their place in id order, in small
 * batches under an advisory lock so that exactly one instance links at a time. Rows
 * that commit late simply join the chain in a later batch: the chain order is
 * chain_seq, not id, so no gap in a sequence can break it.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';

const AUDIT_LINK_LOCK = 7_242_003;
export const GENESIS_HASH = '0'.repeat(64);
/** Rows linked per transaction (HASH_SLICE at a time). */
export const LINK_BATCH_SIZE = 1000;

interface AuditRow {
  id: number;
  type: string;
  agent_id: string | null;
  /** Null only on events written before organizations (the platform organization's). */
  org_id: string | null;
  actor: string;
  data: unknown;
  created_at: Date;
  chain_seq: number | null;
  prev_hash: string | null;
  hash: string | null;
}

/** JSON with object keys sorted at every depth: one byte string for one value. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  // Loops, not map/join: the linker runs this for every event, and it was its largest cost.
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i += 1) out += (i > 0 ? ',' : '') + canonicalJson(value[i]);
    return out + ']';
  }
  const keys = Object.keys(value).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i += 1) {
    out += (i > 0 ? ',' : '') + JSON.stringify(keys[i]) + ':' + canonicalJson((value as Record<string, unknown>)[keys[i]]);
  }
  return out + '}';
}

/** One-shot hashing where Node has it (20.12+): cheaper than a Hash object per event. */
const sha256Hex: (content: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (content) => (crypto as unknown as { hash: (alg: string, data: string, encoding: 'hex') => string }).hash('sha256', content, 'hex')
    : (content) => crypto.createHash('sha256').update(content).digest('hex');

/**
 * canonicalJson of { seq, prevHash, id, type, agentId, orgId (when set), actor, data,
 * createdAt }, written out with its keys already in sorted order (a test holds the two equal).
 */
export function hashAuditEvent(row: Omit<AuditRow, 'chain_seq' | 'prev_hash' | 'hash'>, seq: number, prevHash: string): string {
  const json = canonicalJson; // as JSON.stringify for these, but undefined is null as before
  const content =
    `{"actor":${json(row.actor)},"agentId":${json(row.agent_id)},"createdAt":${json(row.created_at.toISOString())}` +
    `,"data":${canonicalJson(row.data)},"id":${json(String(row.id))}` +
    // Covered when set, so that no event can be moved to another organization; events
    // written before organizations keep the hash they were linked with.
    (row.org_id !== null ? `,"orgId":${json(row.org_id)}` : '') +
    `,"prevHash":${json(prevHash)},"seq":${json(seq)},"type":${json(row.type)}}`;
  return sha256Hex(content);
}

interface PendingRow extends Omit<AuditRow, 'chain_seq' | 'prev_hash' | 'hash'> {
  /** The chain's tail when the batch was read (null: the chain is empty). */
  tail_seq: number | null;
  tail_hash: string | null;
}

/**
 * The batch and the chain's tail in one statement. It runs after the lock is taken, so its
 * snapshot sees every batch linked before. `id > cursor` starts the index scan past the
 * rows this pass linked already, whose dead entries in the partial index would otherwise
 * be walked again by every batch until the next vacuum.
 */
const SELECT_PENDING = `
  with tail as materialized (
    select chain_seq, hash from audit_events where chain_seq is not null order by chain_seq desc limit 1
  )
  select e.id, e.type, e.agent_id, e.org_id, e.actor, e.data, e.created_at, tail.chain_seq as tail_seq, tail.hash as tail_hash
    from audit_events e left join tail on true
   where e.chain_seq is null and e.id > ?
   order by e.id
   limit ?`;

/** Rows hashed between two turns of the event loop; each slice's update is sent before the next is hashed. */
const HASH_SLICE = 250;

interface Batch {
  readonly count: number;
  readonly lastId: number;
}

/**
 * Links one batch of pending events with ids above `afterId`, in one transaction under
 * the lock. `wait`: block for the lock instead of skipping.
 */
async function linkPendingEvents(knex: Knex, wait: boolean, afterId: number): Promise<Batch> {
  return knex.transaction(async (trx) => {
    if (wait) {
      await trx.raw('select pg_advisory_xact_lock(?)', [AUDIT_LINK_LOCK]);
    } else {
      const result = await trx.raw('select pg_try_advisory_xact_lock(?) as locked', [AUDIT_LINK_LOCK]);
      if (!result.rows[0].locked) return { count: 0, lastId: afterId };
    }
    const pending: PendingRow[] = (await trx.raw(SELECT_PENDING, [afterId, LINK_BATCH_SIZE])).rows;
    if (pending.length === 0) return { count: 0, lastId: afterId };
    await linkInSlices(trx, pending);
    return { count: pending.length, lastId: pending[pending.length - 1].id };
  });
}

/**
 * Hashes the batch a slice at a time and sends each slice's update once it is hashed and
 * the update before it is done: PostgreSQL writes one slice while this process hashes the
 * next, and no slice holds the event loop for long. The slices share the transaction, so
 * a failed one rolls back the whole batch and no link can point at a hash not stored.
 */
async function linkInSlices(trx: Knex.Transaction, pending: readonly PendingRow[]): Promise<void> {
  let seq = pending[0].tail_seq ?? 0;
  let prevHash = pending[0].tail_hash ?? GENESIS_HASH;
  let written: Promise<void> = Promise.resolve();
  for (let start = 0; start < pending.length; start += HASH_SLICE) {
    const links: Link[] = [];
    for (const row of pending.slice(start, start + HASH_SLICE)) {
      seq += 1;
      const hash = hashAuditEvent(row, seq, prevHash);
      links.push({ id: row.id, seq, prevHash, hash });
      prevHash = hash;
    }
    // One statement at a time on the connection: each update starts when the one before it is done.
    written = written.then(() => writeLinks(trx, links));
    // Awaited below; handled now so that an early failure is not "unhandled" meanwhile.
    written.catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
  }
  await written;
}

interface Link {
  readonly id: number;
  readonly seq: number;
  readonly prevHash: string;
  readonly hash: string;
}

async function writeLinks(trx: Knex.Transaction, links: readonly Link[]): Promise<void> {
  await trx.raw(
    `update audit_events as e set chain_seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
     from unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[]) as v(id, seq, prev_hash, hash)
     where e.id = v.id`,
    [links.map((l) => l.id), links.map((l) => l.seq), links.map((l) => l.prevHash), links.map((l) => l.hash)],
  );
}

/** Links everything appended so far (used before reading or verifying the chain). */
export async function linkAllPendingEvents(knex: Knex): Promise<void> {
  await linkBacklog(knex, { wait: true });
}

/**
 * Batch after batch until the backlog is linked, so the chain keeps up with any append
 * rate, while no single batch holds the event loop for long. The pass carries a cursor
 * (the last id it linked) so that each batch reads from there; a row that commits late
 * with a lower id is found by one more look from the start before the pass ends, and
 * joins the chain after the rows linked before it. Without `wait` (the background pass)
 * it skips if another instance is linking; `shouldStop` ends it after the batch in hand.
 */
export async function linkBacklog(
  knex: Knex,
  { wait = false, shouldStop = () => false }: { readonly wait?: boolean; readonly shouldStop?: () => boolean | Promise<boolean> } = {},
): Promise<number> {
  let linked = 0;
  let afterId = 0;
  for (;;) {
    const batch = await linkPendingEvents(knex, wait, afterId);
    linked += batch.count;
    if (await shouldStop()) return linked;
    if (batch.count === LINK_BATCH_SIZE) {
      afterId = batch.lastId;
    } else if (afterId === 0) {
      return linked;
    } else {
      afterId = 0;
    }
  }
}

export interface ChainVerification {
  readonly valid: boolean;
  readonly checked: number;
  readonly firstInvalidId?: string;
  /** The first chain sequence affected: by a broken link, or (audit-digests.ts) a digest's head gone. */
  readonly firstInvalidSeq?: number;
}

export interface ChainWalk extends ChainVerification {
  /** The last sequence verified intact (0: none). */
  readonly headSeq: number;
  /** The hash of each intact event whose sequence was asked for (`headsOf`), and of sequence 0. */
  readonly hashAt: ReadonlyMap<number, string>;
}

/**
 * Recomputes the whole chain in order; the first event whose link or hash disagrees is
 * named. `headsOf`: sequences whose hashes the caller will compare with digests.
 */
export async function verifyAuditChain(knex: Knex, headsOf: ReadonlySet<number> = new Set()): Promise<ChainWalk> {
  await linkAllPendingEvents(knex);
  const hashAt = new Map<number, string>([[0, GENESIS_HASH]]);
  let checked = 0;
  let expectedSeq = 1;
  let prevHash = GENESIS_HASH;
  let lastSeq = 0;
  for (;;) {
    const rows: AuditRow[] = await knex('audit_events')
      .whereNotNull('chain_seq')
      .where('chain_seq', '>', lastSeq)
      .orderBy('chain_seq')
      .limit(1000);
    if (rows.length === 0) return { valid: true, checked, headSeq: lastSeq, hashAt };
    for (const row of rows) {
      const isIntact =
        Number(row.chain_seq) === expectedSeq && row.prev_hash === prevHash && row.hash === hashAuditEvent(row, expectedSeq, prevHash);
      if (!isIntact) return { valid: false, checked, firstInvalidId: String(row.id), firstInvalidSeq: expectedSeq, headSeq: lastSeq, hashAt };
      if (headsOf.has(expectedSeq)) hashAt.set(expectedSeq, row.hash as string);
      checked += 1;
      expectedSeq += 1;
      prevHash = row.hash as string;
      lastSeq = Number(row.chain_seq);
    }
  }
}
