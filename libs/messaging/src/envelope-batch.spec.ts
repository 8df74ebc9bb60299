import { createHash, randomBytes } from 'node:crypto';

import {
  MAX_BATCH_SIZE,
  batchStatement,
  batchTree,
  leafHash,
  rootFromProof,
} from './envelope-batch';

const sha256 = (...parts: Uint8Array[]): Buffer => {
  const digest = createHash('sha256');
  for (const part of parts) digest.update(part);
  return digest.digest();
};
const leafOf = (body: Buffer): Buffer => sha256(Buffer.of(0), body);
const nodeOf = (left: Buffer, right: Buffer): Buffer => sha256(Buffer.of(1), left, right);

const leaves = (n: number): Buffer[] =>
  Array.from({ length: n }, (_, i) => leafHash(Buffer.from(`{"n":${i}}`)));

describe('envelope batches', () => {
  it('hash a leaf with the 0x00 prefix of RFC 9162', () => {
    const body = randomBytes(300);

    expect(leafHash(body)).toEqual(leafOf(body));
  });

  it('build the RFC 9162 tree: split at the largest power of two below the size', () => {
    const [a, b, c, d, e] = leaves(5);

    expect(batchTree([a]).root).toEqual(a);
    expect(batchTree([a, b]).root).toEqual(nodeOf(a, b));
    expect(batchTree([a, b, c]).root).toEqual(nodeOf(nodeOf(a, b), c));
    expect(batchTree([a, b, c, d, e]).root).toEqual(nodeOf(nodeOf(nodeOf(a, b), nodeOf(c, d)), e));
    expect(batchTree([a, b, c]).proofs).toEqual([[b, c], [a, c], [nodeOf(a, b)]]);
  });

  it('lead every leaf of every size up to 70, and of the largest, to the root', () => {
    for (const size of [...Array.from({ length: 70 }, (_, i) => i + 1), MAX_BATCH_SIZE]) {
      const hashes = leaves(size);
      const tree = batchTree(hashes);
      hashes.forEach((leaf, index) => {
        expect(rootFromProof(leaf, index, size, tree.proofs[index])).toEqual(tree.root);
      });
    }
  });

  it('lead nowhere with another index, leaf or hash', () => {
    for (const size of [2, 3, 5, 8, 13, 64]) {
      const hashes = leaves(size);
      const tree = batchTree(hashes);
      hashes.forEach((leaf, index) => {
        const proof = tree.proofs[index];
        const leadsToRoot = (root: Buffer | undefined) => root?.equals(tree.root) ?? false;
        for (let other = 0; other < size + 2; other++) {
          if (other === index) continue;
          expect(leadsToRoot(rootFromProof(leaf, other, size, proof))).toBe(false);
        }
        expect(leadsToRoot(rootFromProof(leafHash(Buffer.from('{}')), index, size, proof))).toBe(
          false,
        );
        for (let at = 0; at < proof.length; at++) {
          const changed = proof.map((h) => Buffer.from(h));
          changed[at][at % 32] ^= 0x80;
          expect(leadsToRoot(rootFromProof(leaf, index, size, changed))).toBe(false);
        }
      });
    }
  });

  it('refuse a proof with a hash too many or too few, or a hash of the wrong length', () => {
    const hashes = leaves(6);
    const tree = batchTree(hashes);
    const proof = tree.proofs[4];

    expect(rootFromProof(hashes[4], 4, 6, [...proof, proof[0]])).toBeUndefined();
    expect(rootFromProof(hashes[4], 4, 6, proof.slice(1))).toBeUndefined();
    expect(
      rootFromProof(hashes[4], 4, 6, [proof[0].subarray(1), ...proof.slice(1)]),
    ).toBeUndefined();
    expect(rootFromProof(hashes[0], 0, 1, [])).toEqual(hashes[0]);
    expect(rootFromProof(hashes[0], 0, MAX_BATCH_SIZE + 1, proof)).toBeUndefined();
    expect(rootFromProof(hashes[0], -1, 6, proof)).toBeUndefined();
    expect(rootFromProof(hashes[0], 0.5, 6, proof)).toBeUndefined();
  });

  it('cannot pass an inner node off as a leaf', () => {
    const hashes = leaves(4);
    const tree = batchTree(hashes);
    const left = nodeOf(hashes[0], hashes[1]);

    // The inner node's preimage, presented as an envelope, hashes differently as a leaf.
    const preimage = Buffer.concat([Buffer.of(1), hashes[0], hashes[1]]).subarray(1);
    expect(rootFromProof(leafHash(preimage), 0, 2, [tree.proofs[2][0]])).not.toEqual(tree.root);
    expect(nodeOf(left, tree.proofs[0][1])).toEqual(tree.root);
  });

  it('may fit a tree of another size, which is why the statement signed names the size', () => {
    const hashes = leaves(8);
    const tree = batchTree(hashes);

    expect(rootFromProof(hashes[0], 0, 7, tree.proofs[0])).toEqual(tree.root);
    expect(batchStatement(7, tree.root)).not.toEqual(batchStatement(8, tree.root));
  });

  it('sign a statement that cannot be read as an envelope', () => {
    const root = randomBytes(32);
    const statement = batchStatement(7, root);

    expect(statement[0]).not.toBe('{'.charCodeAt(0));
    expect(statement.subarray(-32)).toEqual(root);
    expect(statement.readUInt32BE(statement.length - 36)).toBe(7);
    expect(batchStatement(8, root)).not.toEqual(statement);
  });

  it('refuses to build an empty or oversized batch', () => {
    expect(() => batchTree([])).toThrow(RangeError);
    expect(() => batchTree(leaves(MAX_BATCH_SIZE + 1))).toThrow(RangeError);
  });
});
