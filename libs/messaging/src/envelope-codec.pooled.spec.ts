import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { generateKeyPairSync } from 'node:crypto';

import { serviceKeyId } from '@portcullis/crypto';

import {
  AS_EVENT,
  EnvelopeFixture,
  ORDER,
  TTL_MS,
  orderCreatedEnvelope,
  refusalOf,
} from '../../../jest/signed-envelopes';
import { MessageRefusedError } from './envelope';
import type { EnvelopeCodec, OpenOptions } from './envelope-codec';
import { SignatureVerifierPool } from './signature-verifier-pool';

const AS_REQUEST: OpenOptions = { subject: 'billing.invoice.void', kinds: ['request'] };

async function asyncRefusalOf(
  codec: EnvelopeCodec,
  wire: Uint8Array,
  options: OpenOptions,
): Promise<string> {
  try {
    await codec.openAsync(wire, options);
    return 'accepted';
  } catch (error) {
    if (error instanceof MessageRefusedError) return error.reason;
    throw error;
  }
}

function inlineRefusalOf(codec: EnvelopeCodec, wire: Uint8Array, options: OpenOptions): string {
  try {
    return refusalOf(codec, wire, options);
  } catch (error) {
    if (error instanceof Error && error.message === 'the message was accepted') return 'accepted';
    throw error;
  }
}

describe('EnvelopeCodec.openAsync through the verification pool', () => {
  let fixture: EnvelopeFixture;
  let pool: SignatureVerifierPool;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
    pool = new SignatureVerifierPool(2, { maxBatch: 16 });
  });

  afterAll(async () => {
    await pool.close();
    fixture.remove();
  });

  /** Messages and how they are opened, each paired with the refusal `open` gives it. */
  function cases(): Array<{ label: string; wire: Buffer; options: OpenOptions }> {
    const { codec } = fixture.codec();
    const sealed = codec.seal('orders', 'event', 'orders.created', ORDER, { correlationId: 'c' });
    const kid = fixture.kidOf('orders');
    const stranger = generateKeyPairSync('ed25519');
    const list = [
      { label: 'valid', wire: sealed, options: AS_EVENT },
      {
        label: 'signed by billing',
        wire: codec.seal('billing', 'event', 'orders.created', ORDER, { correlationId: 'c' }),
        options: AS_EVENT,
      },
      { label: 'wrong subject', wire: sealed, options: { ...AS_EVENT, subject: 'orders.x' } },
      {
        label: 'unknown key',
        wire: fixture.wireOf(
          orderCreatedEnvelope(ORDER),
          serviceKeyId('orders', stranger.publicKey),
          stranger.privateKey,
        ),
        options: AS_EVENT,
      },
      {
        label: 'expired',
        wire: fixture.wireOf(orderCreatedEnvelope(ORDER, { exp: 1 }), kid),
        options: AS_EVENT,
      },
      {
        label: 'invalid payload',
        wire: fixture.wireOf(orderCreatedEnvelope({ ...ORDER, totalCents: 'many' }), kid),
        options: AS_EVENT,
      },
      {
        label: 'not an envelope',
        wire: fixture.wireOf(orderCreatedEnvelope(ORDER, { v: 2 }), kid),
        options: AS_EVENT,
      },
      { label: 'not signed', wire: Buffer.from('{"v":1}'), options: AS_EVENT },
    ];
    for (let i = 0; i < sealed.length; i += 7) {
      const tampered = Buffer.from(sealed);
      tampered[i] ^= 0x01;
      list.push({ label: `byte ${i} flipped`, wire: tampered, options: AS_EVENT });
    }
    return list;
  }

  it('accepts and refuses exactly what open does, with the same reasons and events', async () => {
    const all = cases();
    const inline = fixture.codec();
    const pooled = fixture.codec(TTL_MS, pool);

    const expected = all.map(({ wire, options }) => inlineRefusalOf(inline.codec, wire, options));
    // All at once, so that the pool checks them in shared batches.
    const actual = await Promise.all(
      all.map(({ wire, options }) => asyncRefusalOf(pooled.codec, wire, options)),
    );

    expect(all.map(({ label }, i) => `${label}: ${actual[i]}`)).toEqual(
      all.map(({ label }, i) => `${label}: ${expected[i]}`),
    );
    expect(expected).toContain('bad_signature');
    // The same records; those refused before the signature check (malformed, unknown key) may
    // come first, since they do not wait for the workers.
    const sorted = (events: object[]): string[] => events.map((e) => JSON.stringify(e)).sort();
    expect(sorted(pooled.events.recorded)).toEqual(sorted(inline.events.recorded));
  });

  it('refuses a request seen before as replayed, once the first is accepted', async () => {
    const { codec, events } = fixture.codec(TTL_MS, pool);
    const wire = codec.seal('orders', 'request', 'billing.invoice.void', ORDER, {
      correlationId: 'c',
      rid: 'r-1',
    });

    const outcomes = await Promise.all([
      asyncRefusalOf(codec, wire, AS_REQUEST),
      asyncRefusalOf(codec, wire, AS_REQUEST),
    ]);

    expect(outcomes).toEqual(['accepted', 'replayed']);
    expect(events.recorded).toEqual([expect.objectContaining({ reason: 'replayed' })]);
  });

  it('verifies the bytes it parses, even if the caller reuses its buffer meanwhile', async () => {
    const { codec } = fixture.codec(TTL_MS, pool);
    const wire = codec.seal('orders', 'event', 'orders.created', ORDER, { correlationId: 'c' });
    const forged = fixture.wireOf(
      orderCreatedEnvelope({ ...ORDER, totalCents: 1 }),
      fixture.kidOf('orders'),
    );
    const buffer = Buffer.from(wire);

    const opening = codec.openAsync(buffer, AS_EVENT);
    forged.copy(buffer, 0, 0, Math.min(forged.length, buffer.length));

    await expect(opening).resolves.toMatchObject({ payload: ORDER });
  });
});
