import { hash } from 'node:crypto';

/**
 * One signature for many envelopes: the sender signs the root of a Merkle tree over the
 * envelopes' bytes, and each message carries that signature with its own inclusion proof, so
 * every message can still be checked on its own. The tree is the one of RFC 9162 §2.1.1
 * (SHA-256, leaves prefixed with 0x00 and inner nodes with 0x01, an unbalanced tree split at
 * the largest power of two), so a leaf can never be passed off as an inner node.
 */

/** The most envelopes one signature may cover: at most 10 hashes in a proof. */
export const MAX_BATCH_SIZE = 1024;

const HASH_BYTES = 32;
const LEAF = 0x00;
const NODE = 0x01;
/**
 * Starts every signed batch statement. A single envelope's signed bytes are a JSON object and
 * start with `{`, so no signature over one can be taken for the other.
 */
const STATEMENT_PREFIX = Buffer.from('portcullis envelope batch v1\n', 'latin1');

function sha256(bytes: Uint8Array): Buffer {
  return hash('sha256', bytes, 'buffer');
}

/** The hash of one envelope's bytes as a leaf. */
export function leafHash(body: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(body.length + 1);
  input[0] = LEAF;
  input.set(body, 1);
  return sha256(input);
}

/** Scratch input of an inner node's hash; hashing is synchronous, so one buffer serves all. */
const nodeInput = Buffer.alloc(1 + 2 * HASH_BYTES);

function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  nodeInput[0] = NODE;
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  return sha256(nodeInput);
}

/** The largest power of two below n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** A batch's tree: its root and each leaf's inclusion proof, leaf to root. */
export interface BatchTree {
  readonly root: Buffer;
  readonly proofs: readonly (readonly Buffer[])[];
}

/** Builds the tree over the given leaf hashes (at least one). */
export function batchTree(leaves: readonly Buffer[]): BatchTree {
  if (leaves.length < 1 || leaves.length > MAX_BATCH_SIZE) {
    throw new RangeError(`a batch holds 1 to ${MAX_BATCH_SIZE} envelopes`);
  }
  const proofs: Buffer[][] = leaves.map(() => []);
  // Each subtree's hash is appended to the proofs of the leaves under its sibling, deepest
  // first, which is the order a verifier consumes them in.
  const subtree = (start: number, end: number): Buffer => {
    if (end - start === 1) return leaves[start];
    const middle = start + split(end - start);
    const left = subtree(start, middle);
    const right = subtree(middle, end);
    for (let i = start; i < middle; i++) proofs[i].push(right);
    for (let i = middle; i < end; i++) proofs[i].push(left);
    return nodeHash(left, right);
  };
  return { root: subtree(0, leaves.length), proofs };
}

/**
 * The root a leaf and its proof lead to, or undefined when the proof cannot belong to a leaf
 * at that index in a tree of that size (too few or too many hashes). This is the inclusion
 * check of RFC 9162 §2.1.3.2 with the final comparison left to the signature: a wrong proof
 * gives a root nobody signed.
 */
export function rootFromProof(
  leaf: Buffer,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
): Buffer | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size)) return undefined;
  if (index < 0 || index >= size || size > MAX_BATCH_SIZE) return undefined;
  let fn = index;
  let sn = size - 1;
  let root = leaf;
  for (const sibling of proof) {
    if (sn === 0 || sibling.length !== HASH_BYTES) return undefined;
    if (fn % 2 === 1 || fn === sn) {
      root = nodeHash(sibling, root);
      while (fn % 2 === 0 && fn !== 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else {
      root = nodeHash(root, sibling);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 ? root : undefined;
}

/** The bytes the sender signs for a batch: the prefix, the size and the root. */
export function batchStatement(size: number, root: Uint8Array): Buffer {
  const statement = Buffer.allocUnsafe(STATEMENT_PREFIX.length + 4 + HASH_BYTES);
  STATEMENT_PREFIX.copy(statement, 0);
  statement.writeUInt32BE(size, STATEMENT_PREFIX.length);
  statement.set(root, STATEMENT_PREFIX.length + 4);
  return statement;
}
