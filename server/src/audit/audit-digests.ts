/**
 * Signed digests of the audit chain, as AWS CloudTrail's digest files: whoever can write
 * the database can also recompute the hash chain, so the chain alone cannot show that its
 * newest events were deleted or rewritten. At a fixed interval the server signs the chain's
 * head (first and last sequence since the previous digest, their count, the head's hash)
 * together with the hash of the previous digest, stores the digest and logs it. A copy
 * kept outside the database then shows, at any later time, whether the chain still holds
 * that head.
 *
 * A digest is a compact JWS with `typ` `sentryagent-audit-digest` and no `iss`, `aud` or
 * `exp`: nothing that accepts an access token accepts it, and the reverse. Signing and
 * verifying are given to this module (keys/signing-keys.ts), which never reads a key.
 */
import crypto from 'node:crypto';
import type { Knex } from 'knex';
import type { Clock } from '../clock.js';
import { GENESIS_HASH, linkAllPendingEvents, verifyAuditChain, type ChainVerification } from './audit-chain.js';

export const AUDIT_DIGEST_TYPE = 'sentryagent-audit-digest';
const DIGEST_LOCK = 7_242_006;

export interface AuditDigest {
  /** The digest's own place: 1, 2, 3… */
  readonly seq: number;
  /** The chain sequences it covers, since the previous digest (firstSeq > lastSeq: none new). */
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly count: number;
  /** The hash of event lastSeq (the genesis hash when the chain is empty). */
  readonly headHash: string;
  /** SHA-256 (hex) of the previous digest's JWS; the genesis hash for the first. */
  readonly previousDigestHash: string;
  /** Unix seconds. */
  readonly issuedAt: number;
}

export type SignDocument = (typ: string, payload: Record<string, unknown>) => string;
/** The payload of a document of type `typ` signed by one of our keys, or undefined. */
export type VerifyDocument = (jws: string, typ: string) => Promise<Record<string, unknown> | undefined>;

interface DigestRow {
  seq: number;
  first_seq: number;
  last_seq: number;
  count: number;
  head_hash: string;
  previous_digest_hash: string;
  jws: string;
}

const hashOf = (jws: string) => crypto.createHash('sha256').update(jws).digest('hex');

/**
 * Signs and stores the next digest, under a lock so that one instance does it, unless a
 * digest newer than `minIntervalMs` exists. Refuses (returns `refused`, emits nothing)
 * when the chain no longer holds the previous digest's head: a new digest must never
 * bless a truncation.
 */
export async function emitAuditDigest(
  knex: Knex,
  sign: SignDocument,
  clock: Clock,
  minIntervalMs = 0,
): Promise<{ digest: AuditDigest; jws: string } | 'refused' | undefined> {
  await linkAllPendingEvents(knex);
  return knex.transaction(async (trx) => {
    const locked = await trx.raw('select pg_try_advisory_xact_lock(?) as locked', [DIGEST_LOCK]);
    if (!locked.rows[0].locked) return undefined;
    const nowMs = clock.now();
    const previous: (DigestRow & { created_at: Date }) | undefined = await trx('audit_digests').orderBy('seq', 'desc').first();
    if (previous && nowMs - new Date(previous.created_at).getTime() < minIntervalMs) return undefined;
    const head: { chain_seq: number; hash: string } | undefined = await trx('audit_events')
      .whereNotNull('chain_seq')
      .orderBy('chain_seq', 'desc')
      .first('chain_seq', 'hash');
    const lastSeq = Number(head?.chain_seq ?? 0);
    if (previous) {
      const previousHead = Number(previous.last_seq) === 0 ? { hash: GENESIS_HASH } : await trx('audit_events').where({ chain_seq: previous.last_seq }).first('hash');
      if (lastSeq < Number(previous.last_seq) || previousHead?.hash !== previous.head_hash) return 'refused';
    }
    const firstSeq = Number(previous?.last_seq ?? 0) + 1;
    const digest: AuditDigest = {
      seq: Number(previous?.seq ?? 0) + 1,
      firstSeq,
      lastSeq,
      count: Math.max(0, lastSeq - firstSeq + 1),
      headHash: head?.hash ?? GENESIS_HASH,
      previousDigestHash: previous ? hashOf(previous.jws) : GENESIS_HASH,
      issuedAt: Math.floor(nowMs / 1000),
    };
    const jws = sign(AUDIT_DIGEST_TYPE, payloadOf(digest));
    await trx('audit_digests').insert({
      seq: digest.seq,
      first_seq: digest.firstSeq,
      last_seq: digest.lastSeq,
      count: digest.count,
      head_hash: digest.headHash,
      previous_digest_hash: digest.previousDigestHash,
      jws,
      created_at: new Date(nowMs),
    });
    return { digest, jws };
  });
}

function payloadOf(digest: AuditDigest): Record<string, unknown> {
  return {
    digest_seq: digest.seq,
    first_seq: digest.firstSeq,
    last_seq: digest.lastSeq,
    count: digest.count,
    head_hash: digest.headHash,
    previous_digest_hash: digest.previousDigestHash,
    iat: digest.issuedAt,
  };
}

const HASH = /^[0-9a-f]{64}$/;
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) >= 0;

/** The digest a verified payload describes, or undefined when it is not one. */
function digestOf(payload: Record<string, unknown>): AuditDigest | undefined {
  const { digest_seq, first_seq, last_seq, count, head_hash, previous_digest_hash, iat } = payload;
  if (![digest_seq, first_seq, last_seq, count, iat].every(isCount)) return undefined;
  if (typeof head_hash !== 'string' || !HASH.test(head_hash) || typeof previous_digest_hash !== 'string' || !HASH.test(previous_digest_hash)) {
    return undefined;
  }
  if ('iss' in payload || 'aud' in payload || 'exp' in payload) return undefined;
  return {
    seq: digest_seq as number,
    firstSeq: first_seq as number,
    lastSeq: last_seq as number,
    count: count as number,
    headHash: head_hash,
    previousDigestHash: previous_digest_hash,
    issuedAt: iat as number,
  };
}

/** A digest handed in from outside (a file, a query parameter): its signature and form, or undefined. */
export async function readAuditDigest(jws: string, verify: VerifyDocument): Promise<{ digest: AuditDigest; jws: string } | undefined> {
  const trimmed = jws.trim();
  const payload = await verify(trimmed, AUDIT_DIGEST_TYPE);
  const digest = payload && digestOf(payload);
  return digest ? { digest, jws: trimmed } : undefined;
}

export interface AuditVerification extends ChainVerification {
  /** Digests checked: the stored ones, and the one handed in. */
  readonly digestsChecked: number;
}

/**
 * The chain (every link and hash) and its digests: each stored digest is signed by one of
 * our keys, follows the one before it, and names a head the chain still holds; a digest
 * handed in (`external`) must be among them, byte for byte, and its head held too. The
 * first sequence affected is reported: where a link breaks, where the events a digest
 * covered end early (truncation), or the first a digest covered whose head changed.
 */
export async function verifyAuditTrail(
  knex: Knex,
  verify: VerifyDocument,
  external?: { digest: AuditDigest; jws: string },
): Promise<AuditVerification> {
  const rows: DigestRow[] = await knex('audit_digests').orderBy('seq');
  const heads = new Set(rows.map((row) => Number(row.last_seq)));
  if (external) heads.add(external.digest.lastSeq);
  const chain = await verifyAuditChain(knex, heads);
  const affected: number[] = chain.firstInvalidSeq === undefined ? [] : [chain.firstInvalidSeq];

  /** The first sequence a digest shows to be affected, or undefined when the chain holds its head. */
  const headProblem = (digest: AuditDigest): number | undefined => {
    const hash = chain.hashAt.get(digest.lastSeq);
    if (hash === digest.headHash) return undefined;
    // The chain ends before the head: the first event missing. Otherwise the head changed,
    // somewhere in what the digest covered (or before: earlier digests may say more).
    return hash === undefined && digest.lastSeq > chain.headSeq ? chain.headSeq + 1 : Math.min(digest.firstSeq, digest.lastSeq);
  };

  let previous: DigestRow | undefined;
  for (const row of rows) {
    const verified = await readAuditDigest(row.jws, verify);
    const digest = verified?.digest;
    const isLinked =
      digest !== undefined &&
      digest.seq === Number(row.seq) &&
      digest.firstSeq === Number(previous?.last_seq ?? 0) + 1 &&
      digest.previousDigestHash === (previous ? hashOf(previous.jws) : GENESIS_HASH);
    if (!isLinked) {
      affected.push(Number(row.first_seq));
      break;
    }
    const problem = headProblem(digest);
    if (problem !== undefined) {
      affected.push(problem);
      break;
    }
    previous = row;
  }
  if (external) {
    const stored = rows.find((row) => Number(row.seq) === external.digest.seq);
    const problem = headProblem(external.digest);
    if (problem !== undefined) affected.push(problem);
    // Gone from the database, or replaced: the digest chain there was rewritten.
    else if (stored?.jws !== external.jws) affected.push(Math.min(external.digest.firstSeq, external.digest.lastSeq));
  }
  const firstInvalidSeq = affected.length > 0 ? Math.max(1, Math.min(...affected)) : undefined;
  return {
    valid: chain.valid && firstInvalidSeq === undefined,
    checked: chain.checked,
    ...(chain.firstInvalidId !== undefined && { firstInvalidId: chain.firstInvalidId }),
    ...(firstInvalidSeq !== undefined && { firstInvalidSeq }),
    digestsChecked: rows.length + (external ? 1 : 0),
  };
}
