import { type ChainedRecord, GENESIS_HASH, chainHash } from './canonical-form';

/** One row of the chain as stored: the record, its place and both hashes. */
export interface StoredChainRow extends ChainedRecord {
  readonly prevHash: string;
  readonly hash: string;
}

/** Why a record breaks the chain. */
export type ChainBreak =
  /** Its fields no longer give its hash: the record was altered. */
  | 'hash_mismatch'
  /** Its `prev_hash` is not the hash of the record before it: records were moved or replaced. */
  | 'prev_hash_mismatch'
  /** Records are missing before it: its sequence number does not follow the previous one. */
  | 'sequence_gap'
  /** The chain ends before the head the collector recorded: records were removed at its end. */
  | 'truncated';

export interface ChainVerification {
  readonly ok: boolean;
  /** How many records were checked. */
  readonly records: number;
  readonly firstBroken?: { sequence: number; id: string | null; reason: ChainBreak };
}

/** The last sequence and hash the collector appended, kept apart from the rows. */
export interface ChainHead {
  readonly sequence: number;
  readonly hash: string;
}

/** Reads the rows after `afterSequence` in sequence order, at most `limit` of them. */
export type ChainPageReader = (afterSequence: number, limit: number) => Promise<StoredChainRow[]>;

const PAGE = 2_000;

/**
 * Walks a whole chain from its first record, page by page, and stops at the first record
 * that breaks it: an altered record fails its own hash, a moved or replaced one fails the
 * link to its predecessor, a removed one leaves a gap in the sequence numbers, and records
 * removed at the end fall short of the head. With a head, the walk ends there: read the head
 * first, and records appended meanwhile are left for the next check.
 */
export async function verifyChain(
  read: ChainPageReader,
  head?: ChainHead,
): Promise<ChainVerification> {
  let previousHash = GENESIS_HASH;
  let previousSequence = 0;
  let records = 0;
  for (;;) {
    const page = await read(previousSequence, PAGE);
    // Records appended after the head was read are not part of the chain being checked.
    const rows = head ? page.filter((row) => row.sequence <= head.sequence) : page;
    for (const row of rows) {
      const broken = checkRow(row, previousSequence, previousHash);
      if (broken) {
        return {
          ok: false,
          records,
          firstBroken: { sequence: row.sequence, id: row.record.id, reason: broken },
        };
      }
      records += 1;
      previousSequence = row.sequence;
      previousHash = row.hash;
    }
    if (page.length < PAGE || rows.length < page.length) break;
  }
  if (head && (head.sequence !== previousSequence || head.hash !== previousHash)) {
    return {
      ok: false,
      records,
      firstBroken: { sequence: previousSequence + 1, id: null, reason: 'truncated' },
    };
  }
  return { ok: true, records };
}

function checkRow(
  row: StoredChainRow,
  previousSequence: number,
  previousHash: string,
): ChainBreak | undefined {
  if (row.sequence !== previousSequence + 1) return 'sequence_gap';
  if (row.prevHash !== previousHash) return 'prev_hash_mismatch';
  if (chainHash(row.prevHash, row) !== row.hash) return 'hash_mismatch';
  return undefined;
}
