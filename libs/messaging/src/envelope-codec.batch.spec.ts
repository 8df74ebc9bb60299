import { randomUUID } from 'node:crypto';

import {
  AS_EVENT,
  EnvelopeFixture,
  ORDER,
  TTL_MS,
  refusalOf,
} from '../../../jest/signed-envelopes';
import type { RefusalReason } from './envelope';
import type { BatchMessage, EnvelopeCodec } from './envelope-codec';
import { type SignatureVerifier, verifySignature } from './signature-verifier';

const AS_CANCELLATION = { subject: 'orders.cancelled', kinds: ['event' as const] };

const created = (totalCents: number): BatchMessage => ({
  kind: 'event',
  type: 'orders.created',
  payload: { ...ORDER, orderId: randomUUID(), totalCents },
  options: { correlationId: `corr-${totalCents}` },
});
const cancelled: BatchMessage = {
  kind: 'event',
  type: 'orders.cancelled',
  payload: { orderId: ORDER.orderId, customerId: ORDER.customerId },
  options: { correlationId: 'corr-cancel' },
};

/** Verifies on this thread, counting the checks and what each covered. */
function countingVerifier(): SignatureVerifier & { readonly covered: Buffer[] } {
  const covered: Buffer[] = [];
  return {
    covered,
    verify: (body, publicKey, signature) => {
      covered.push(Buffer.from(body));
      return Promise.resolve(verifySignature(body, publicKey, signature));
    },
  };
}

/** The wire's parts: kid, signature, proof and body, split at their dots. */
function partsOf(wire: Buffer): { dots: number[]; proofEnd: number } {
  const dots = [wire.indexOf('.')];
  dots.push(wire.indexOf('.', dots[0] + 1));
  dots.push(wire.indexOf('.', dots[1] + 1));
  return { dots, proofEnd: dots[2] };
}

describe('EnvelopeCodec batches', () => {
  let fixture: EnvelopeFixture;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
  });

  afterAll(() => {
    fixture.remove();
  });

  const sealFive = (codec: EnvelopeCodec): Buffer[] =>
    codec.sealBatch('orders', [created(1), created(2), cancelled, created(3), created(4)]);

  it('opens each message of a batch on its own, with its own type, id and payload', async () => {
    const { codec } = fixture.codec();
    const wires = sealFive(codec);
    const receiver = fixture.codec().codec;

    const opened = [
      receiver.open(wires[0], AS_EVENT),
      await receiver.openAsync(wires[1], AS_EVENT),
      receiver.open(wires[2], AS_CANCELLATION),
      await receiver.openAsync(wires[4], AS_EVENT),
    ];

    expect(opened.map((m) => [m.type, m.correlationId])).toEqual([
      ['orders.created', 'corr-1'],
      ['orders.created', 'corr-2'],
      ['orders.cancelled', 'corr-cancel'],
      ['orders.created', 'corr-4'],
    ]);
    expect(new Set(opened.map((m) => m.id)).size).toBe(4);
    expect(opened[3].payload).toMatchObject({ totalCents: 4 });
  });

  it('checks the signature once for all the messages of a batch, however they arrive', async () => {
    const wires = sealFive(fixture.codec().codec);
    const verifier = countingVerifier();
    const { codec } = fixture.codec(TTL_MS, verifier);
    const asEach = (i: number) => (i === 2 ? AS_CANCELLATION : AS_EVENT);

    await Promise.all(wires.slice(0, 3).map((wire, i) => codec.openAsync(wire, asEach(i))));
    await codec.openAsync(wires[3], AS_EVENT);
    codec.open(wires[4], AS_EVENT);

    expect(verifier.covered).toHaveLength(1);
    expect(verifier.covered[0].toString('latin1')).toMatch(/^portcullis envelope batch v1\n/);
  });

  it('seals one message as a single envelope, signed over its own bytes', () => {
    const { codec } = fixture.codec();
    const [wire] = codec.sealBatch('orders', [created(7)]);
    const { dots } = partsOf(wire);

    expect(wire[dots[1] + 1]).toBe('{'.charCodeAt(0));
    expect(codec.sealBatch('orders', [])).toEqual([]);
    expect(fixture.codec().codec.open(wire, AS_EVENT).correlationId).toBe('corr-7');
  });

  it('refuses a batched message whichever single byte was flipped, verified batch or not', () => {
    const wires = sealFive(fixture.codec().codec);
    const wire = wires[3];
    const { dots } = partsOf(wire);
    const allowed = (i: number): RefusalReason[] => {
      if (i < dots[0]) return ['unknown_key'];
      if (dots.includes(i)) return ['malformed', 'bad_signature'];
      if (i < dots[1]) return ['bad_signature'];
      // The proof: a digit or hash that no longer parses, or one that leads to another root.
      if (i < dots[2]) return ['malformed', 'bad_signature'];
      return ['bad_signature'];
    };

    for (const verifiedFirst of [false, true]) {
      const { codec, events } = fixture.codec();
      if (verifiedFirst) codec.open(wires[0], AS_EVENT);
      const mismatches: string[] = [];
      for (let i = 0; i < wire.length; i++) {
        const tampered = Buffer.from(wire);
        tampered[i] ^= 0x01;
        const reason = refusalOf(codec, tampered, AS_EVENT);
        if (!allowed(i).includes(reason)) mismatches.push(`byte ${i}: ${reason}`);
      }
      expect(mismatches).toEqual([]);
      expect(events.recorded.filter((e) => e.type === 'message.refused')).toHaveLength(wire.length);
      expect(codec.open(wire, AS_EVENT).correlationId).toBe('corr-3');
    }
  });

  it("refuses a message carrying another batch's signature or proof", () => {
    const { codec } = fixture.codec();
    const first = sealFive(codec);
    const second = sealFive(codec);
    const receiver = fixture.codec().codec;
    receiver.open(first[0], AS_EVENT);
    receiver.open(second[0], AS_EVENT);
    const { dots } = partsOf(first[1]);
    const header = (wire: Buffer) => wire.subarray(0, partsOf(wire).dots[2] + 1);
    const body = (wire: Buffer) => wire.subarray(partsOf(wire).dots[2] + 1);

    const proofFromSecond = Buffer.concat([header(second[1]), body(first[1])]);
    const signatureFromSecond = Buffer.concat([
      first[1].subarray(0, dots[0] + 1),
      second[1].subarray(dots[0] + 1, dots[1]),
      first[1].subarray(dots[1]),
    ]);

    expect(refusalOf(receiver, proofFromSecond, AS_EVENT)).toBe('bad_signature');
    expect(refusalOf(receiver, signatureFromSecond, AS_EVENT)).toBe('bad_signature');
  });

  it('refuses a proof that claims another size or index, or is not in canonical form', () => {
    const { codec } = fixture.codec();
    const [, wire] = sealFive(codec);
    const { dots } = partsOf(wire);
    const proof = wire.toString('latin1', dots[1] + 1, dots[2]);
    const withProof = (text: string) =>
      Buffer.concat([
        wire.subarray(0, dots[1] + 1),
        Buffer.from(text, 'latin1'),
        wire.subarray(dots[2]),
      ]);
    const [size, index, hashes] = proof.split(':');
    expect([size, index]).toEqual(['5', '1']);

    const receiver = fixture.codec().codec;
    expect(refusalOf(receiver, withProof(`6:${index}:${hashes}`), AS_EVENT)).toBe('bad_signature');
    expect(refusalOf(receiver, withProof(`5:0:${hashes}`), AS_EVENT)).toBe('bad_signature');
    expect(refusalOf(receiver, withProof(`05:1:${hashes}`), AS_EVENT)).toBe('malformed');
    expect(refusalOf(receiver, withProof(`5:1:${hashes.toUpperCase()}`), AS_EVENT)).toBe(
      'malformed',
    );
    expect(refusalOf(receiver, withProof(`1:0:`), AS_EVENT)).toBe('malformed');
    expect(refusalOf(receiver, withProof(`5:5:${hashes}`), AS_EVENT)).toBe('malformed');
    expect(refusalOf(receiver, withProof(`5:9999:${hashes}`), AS_EVENT)).toBe('malformed');
    expect(refusalOf(receiver, withProof(`5:1:${hashes}${hashes.slice(0, 64)}`), AS_EVENT)).toBe(
      'bad_signature',
    );
    expect(refusalOf(receiver, withProof(`5:1:${'0'.repeat(64 * 11)}`), AS_EVENT)).toBe(
      'malformed',
    );
    expect(receiver.open(wire, AS_EVENT).correlationId).toBe('corr-2');
  });

  it('keeps replay protection per message: a repeat is refused, its siblings are not', () => {
    const wires = sealFive(fixture.codec().codec);
    const { codec } = fixture.codec();

    codec.open(wires[0], AS_EVENT);

    expect(refusalOf(codec, wires[0], AS_EVENT)).toBe('replayed');
    expect(codec.open(wires[1], AS_EVENT).correlationId).toBe('corr-2');
  });

  it('applies every other check to each message: expiry, subject, sender', () => {
    const wires = sealFive(fixture.codec().codec);
    const { codec, clock } = fixture.codec();

    expect(refusalOf(codec, wires[2], AS_EVENT)).toBe('subject_mismatch');
    clock.now += TTL_MS;
    expect(refusalOf(codec, wires[1], AS_EVENT)).toBe('expired');
    const billing = fixture.codec().codec.sealBatch('billing', [created(8), created(9)]);
    expect(refusalOf(fixture.codec().codec, billing[0], AS_EVENT)).toBe('type_not_allowed');
  });

  it('splits more messages than one signature may cover into several batches', () => {
    const { codec } = fixture.codec();
    const wires = codec.sealBatch(
      'orders',
      Array.from({ length: 1030 }, (_, i) => created(i + 1)),
    );
    const sizes = wires.map((wire) => {
      const { dots } = partsOf(wire);
      return wire[dots[1] + 1] === '{'.charCodeAt(0)
        ? 1
        : Number(wire.toString('latin1', dots[1] + 1, dots[2]).split(':')[0]);
    });

    expect(sizes.slice(0, 1024).every((size) => size === 1024)).toBe(true);
    expect(sizes.slice(1024).every((size) => size === 6)).toBe(true);
    const receiver = fixture.codec().codec;
    expect(receiver.open(wires[1029], AS_EVENT).correlationId).toBe('corr-1030');
  });

  it('refuses a malformed proof as malformed, whatever key it names', () => {
    const [, wire] = sealFive(fixture.codec().codec);
    const { dots } = partsOf(wire);
    const unknownKid = Buffer.concat([
      Buffer.from('orders-0000000000000000', 'latin1'),
      wire.subarray(dots[0], dots[1] + 1),
      Buffer.from('99999:0:', 'latin1'),
      wire.subarray(dots[2]),
    ]);

    expect(refusalOf(fixture.codec().codec, unknownKid, AS_EVENT)).toBe('malformed');
  });

  it('answers in arrival order: a message of a verified batch waits for earlier checks', async () => {
    const { codec: sender } = fixture.codec();
    const batch = sealFive(sender);
    const single = sender.seal('orders', 'event', 'orders.created', ORDER, {
      correlationId: 'single',
    });
    const { codec } = fixture.codec(TTL_MS, {
      verify: (body, publicKey, signature) =>
        new Promise((resolve) =>
          setTimeout(() => resolve(verifySignature(body, publicKey, signature)), 20),
        ),
    });
    await codec.openAsync(batch[0], AS_EVENT);

    const answered: string[] = [];
    await Promise.all([
      codec.openAsync(single, AS_EVENT).then((m) => answered.push(m.correlationId)),
      codec.openAsync(batch[1], AS_EVENT).then((m) => answered.push(m.correlationId)),
    ]);

    expect(answered).toEqual(['single', 'corr-2']);
  });

  it('checks each message of a batch on its own when the shared check fails to run', async () => {
    const wires = sealFive(fixture.codec().codec);
    let calls = 0;
    const { codec, events } = fixture.codec(TTL_MS, {
      verify: () => {
        calls += 1;
        return Promise.reject(new Error('worker lost'));
      },
    });

    const opened = await Promise.all([0, 1, 3].map((i) => codec.openAsync(wires[i], AS_EVENT)));

    expect(opened.map((m) => m.correlationId)).toEqual(['corr-1', 'corr-2', 'corr-3']);
    expect(calls).toBe(1);
    expect(events.recorded).toEqual([]);
    const forged = Buffer.from(wires[4]);
    forged[forged.length - 3] ^= 0x01;
    await expect(codec.openAsync(forged, AS_EVENT)).rejects.toMatchObject({
      reason: 'bad_signature',
    });
  });
});
