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
export const LINK_BATCH_SIZE = 250;

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
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((key) => `${JSON.stringify(key)}:${canonicalJson((value as Record<string, unknown>)[key])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function hashAuditEvent(row: Omit<AuditRow, 'chain_seq' | 'prev_hash' | 'hash'>, seq: number, prevHash: string): string {
  const content = canonicalJson({
    seq,
    prevHash,
    id: String(row.id),
    type: row.type,
    agentId: row.agent_id,
    // Covered when set, so that no event can be moved to another organization; events
    // written before organizations keep the hash they were linked with.
    ...(row.org_id !== null && { orgId: row.org_id }),
    actor: row.actor,
    data: row.data,
    createdAt: row.created_at.toISOString(),
  });
  return crypto.createHash('sha256').update(content).digest('hex');
}

/** Links one batch of pending events. `wait`: block for the lock instead of skipping. */
export async function linkPendingEvents(knex: Knex, wait = false): Promise<number> {
  return knex.transaction(async (trx) => {
    if (wait) {
      await trx.raw('select pg_advisory_xact_lock(?)', [AUDIT_LINK_LOCK]);
    } else {
      const result = await trx.raw('select pg_try_advisory_xact_lock(?) as locked', [AUDIT_LINK_LOCK]);
      if (!result.rows[0].locked) return 0;
    }
    const pending: AuditRow[] = await trx('audit_events').whereNull('chain_seq').orderBy('id').limit(LINK_BATCH_SIZE);
    if (pending.length === 0) return 0;
    const tail: Pick<AuditRow, 'chain_seq' | 'hash'> | undefined = await trx('audit_events')
      .whereNotNull('chain_seq')
      .orderBy('chain_seq', 'desc')
      .first('chain_seq', 'hash');
    let seq = tail?.chain_seq ?? 0;
    let prevHash = tail?.hash ?? GENESIS_HASH;
    const links: [number, number, string, string][] = [];
    for (const row of pending) {
      seq += 1;
      const hash = hashAuditEvent(row, seq, prevHash);
      links.push([row.id, seq, prevHash, hash]);
      prevHash = hash;
    }
    await trx.raw(
      `update audit_events as e set chain_seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
       from unnest(?::bigint[], ?::bigint[], ?::text[], ?::text[]) as v(id, seq, prev_hash, hash)
       where e.id = v.id`,
      [links.map((l) => l[0]), links.map((l) => l[1]), links.map((l) => l[2]), links.map((l) => l[3])],
    );
    return links.length;
  });
}

/** Links everything appended so far (used before reading or verifying the chain). */
export async function linkAllPendingEvents(knex: Knex): Promise<void> {
  await linkBacklog(knex, { wait: true });
}

/**
 * Batch after batch until the backlog is linked, so the chain keeps up with any append
 * rate (one batch per tick would fall behind past LINK_BATCH_SIZE per tick), while no
 * single batch holds the event loop for long. Without `wait` (the background pass) it
 * skips if another instance is linking; `shouldStop` ends it after the batch in hand.
 */
export async function linkBacklog(
  knex: Knex,
  { wait = false, shouldStop = () => false }: { readonly wait?: boolean; readonly shouldStop?: () => boolean } = {},
): Promise<number> {
  let linked = 0;
  for (;;) {
    const count = await linkPendingEvents(knex, wait);
    linked += count;
    if (count < LINK_BATCH_SIZE || shouldStop()) return linked;
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
