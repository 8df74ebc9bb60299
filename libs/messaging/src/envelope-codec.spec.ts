import { generateKeyPairSync, randomUUID } from 'node:crypto';

import { serviceKeyId } from '@portcullis/crypto';

import {
  AS_EVENT,
  EnvelopeFixture,
  ORDER,
  T0,
  orderCreatedEnvelope,
  refusalOf,
} from '../../../jest/signed-envelopes';
import type { RefusalReason } from './envelope';
import { EnvelopeCodec } from './envelope-codec';

const ACTOR = { id: randomUUID(), roles: ['customer'], sessionId: randomUUID() };
const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

describe(EnvelopeCodec.name, () => {
  let fixture: EnvelopeFixture;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
  });

  afterAll(() => {
    fixture.remove();
  });

  const sealOrder = (sender: 'orders' | 'billing' = 'orders'): Buffer =>
    fixture.codec().codec.seal(sender, 'event', 'orders.created', ORDER, { correlationId: 'c-1' });

  const signedOrder = (changes: object = {}): Buffer =>
    fixture.wireOf(orderCreatedEnvelope(ORDER, changes), fixture.kidOf('orders'));

  /** Opens with a fresh codec and checks both the refusal and the security event it records. */
  function expectRefused(wire: Uint8Array, reason: RefusalReason, options = AS_EVENT): void {
    const { codec, events } = fixture.codec();
    expect(refusalOf(codec, wire, options)).toBe(reason);
    expect(events.recorded).toEqual([
      expect.objectContaining({ type: 'message.refused', outcome: 'denied', reason }),
    ]);
  }

  describe('a sealed event opened by its receiver', () => {
    it('returns the payload, sender, actor and correlation id', () => {
      const { codec } = fixture.codec();
      const wire = codec.seal('orders', 'event', 'orders.created', ORDER, {
        correlationId: 'corr-42',
        actor: ACTOR,
      });

      const message = codec.open(wire, AS_EVENT);

      expect(message).toMatchObject({
        kind: 'event',
        type: 'orders.created',
        sender: 'orders',
        issuedAt: T0,
        correlationId: 'corr-42',
        actor: ACTOR,
        payload: ORDER,
      });
    });

    it('reads the message from a view into a larger buffer', () => {
      const wire = sealOrder();
      const framed = Buffer.concat([Buffer.from('head'), wire, Buffer.from('tail')]);
      const view = new Uint8Array(framed.buffer, framed.byteOffset + 4, wire.length);

      expect(fixture.codec().codec.open(view, AS_EVENT).payload).toEqual(ORDER);
    });

    it('accepts a hand-built envelope signed with the sender key', () => {
      expect(fixture.codec().codec.open(signedOrder(), AS_EVENT).payload).toEqual(ORDER);
    });
  });

  describe('the trace context', () => {
    const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

    it('travels signed and is exposed on the verified message', () => {
      const { codec } = fixture.codec();
      const wire = codec.seal('orders', 'event', 'orders.created', ORDER, {
        correlationId: 'corr-43',
        traceparent: TRACEPARENT,
      });

      expect(codec.open(wire, AS_EVENT).traceparent).toBe(TRACEPARENT);
    });

    it('is absent from a message sealed without one', () => {
      expect(fixture.codec().codec.open(sealOrder(), AS_EVENT).traceparent).toBeUndefined();
    });

    it.each([
      ['an upper-case id', '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01'],
      ['another version', '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'],
      ['an all-zero trace id', `00-${'0'.repeat(32)}-00f067aa0ba902b7-01`],
      ['an all-zero span id', `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`],
      ['a short span id', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902-01'],
      ['trailing text', `${TRACEPARENT}-extra`],
      ['a number', 42],
      ['null', null],
    ])('makes a signed message malformed when it holds %s', (_situation, traceparent) => {
      expectRefused(signedOrder({ traceparent }), 'malformed');
    });
  });

  describe('a tampered message', () => {
    it('is refused whichever single byte was flipped', () => {
      const { codec, events } = fixture.codec();
      const wire = sealOrder();
      const firstDot = wire.indexOf('.');
      const secondDot = wire.indexOf('.', firstDot + 1);
      const expected = (i: number): RefusalReason => {
        if (i < firstDot) return 'unknown_key';
        if (i === firstDot || i === secondDot) return 'malformed';
        // Without its opening brace the body reads as a batch proof, which it is not.
        if (i === secondDot + 1) return 'malformed';
        return 'bad_signature';
      };

      const mismatches: string[] = [];
      for (let i = 0; i < wire.length; i++) {
        const tampered = Buffer.from(wire);
        tampered[i] ^= 0x01;
        const reason = refusalOf(codec, tampered, AS_EVENT);
        if (reason !== expected(i)) mismatches.push(`byte ${i}: ${reason}`);
      }

      expect(mismatches).toEqual([]);
      expect(events.recorded).toHaveLength(wire.length);
      expect(codec.open(wire, AS_EVENT).payload).toEqual(ORDER);
    });

    it('is refused when the signature is cut, padded or not base64url', () => {
      const wire = sealOrder().toString('latin1');
      const [kid, signature] = wire.split('.');
      const body = wire.slice(kid.length + signature.length + 2);

      expectRefused(Buffer.from(`${kid}.${signature.slice(1)}.${body}`), 'malformed');
      expectRefused(Buffer.from(`${kid}.${signature}AA.${body}`), 'malformed');
      expectRefused(Buffer.from(`${kid}.!${signature.slice(1)}.${body}`), 'bad_signature');
    });

    it('is refused when its signature is re-encoded, even on first sight', () => {
      const { codec } = fixture.codec();
      const wire = sealOrder();
      const signatureEnd = wire.indexOf('.', wire.indexOf('.') + 1);

      // The last of 86 base64url characters carries 2 signature bits and 4 padding bits.
      const value = BASE64URL.indexOf(String.fromCharCode(wire[signatureEnd - 1]));
      const reencoded = Buffer.from(wire);
      reencoded[signatureEnd - 1] = BASE64URL.charCodeAt((value & 0b110000) | 0b000101);

      expect(refusalOf(codec, reencoded, AS_EVENT)).toBe('bad_signature');
      expect(codec.open(wire, AS_EVENT).type).toBe('orders.created');
    });

    it('is refused when it is not a signed envelope at all', () => {
      expectRefused(Buffer.from('{"v":1}'), 'malformed');
      expectRefused(Buffer.alloc(0), 'malformed');
    });

    it('is refused when correctly signed JSON is not an envelope', () => {
      const kid = fixture.kidOf('orders');
      const withoutPayload: Record<string, unknown> = { ...orderCreatedEnvelope(ORDER) };
      delete withoutPayload.payload;

      expectRefused(signedOrder({ id: 'not-a-uuid' }), 'malformed');
      expectRefused(signedOrder({ v: 2 }), 'malformed');
      expectRefused(signedOrder({ actor: { id: ACTOR.id, roles: ['Admin!'] } }), 'malformed');
      expectRefused(fixture.wireOf([orderCreatedEnvelope(ORDER)], kid), 'malformed');
      expectRefused(fixture.wireOf(withoutPayload, kid), 'malformed');
    });
  });

  describe('a message signed with a key the receiver does not trust', () => {
    it('is refused as unknown_key', () => {
      const stranger = generateKeyPairSync('ed25519');
      const kid = serviceKeyId('orders', stranger.publicKey);
      const wire = fixture.wireOf(orderCreatedEnvelope(ORDER), kid, stranger.privateKey);

      expectRefused(wire, 'unknown_key');
    });
  });

  describe('a message its sender may not send', () => {
    it('refuses orders.created signed by billing and records who sent it', () => {
      const { codec, events } = fixture.codec();

      expect(refusalOf(codec, sealOrder('billing'), AS_EVENT)).toBe('type_not_allowed');
      expect(events.recorded).toEqual([
        {
          type: 'message.refused',
          outcome: 'denied',
          reason: 'type_not_allowed',
          details: { messageType: 'orders.created', sender: 'billing', subject: 'orders.created' },
        },
      ]);
    });

    it('refuses an envelope naming billing as its sender under the orders key', () => {
      const wire = signedOrder({ sender: 'billing', type: 'billing.invoice.paid' });

      expectRefused(wire, 'sender_mismatch', { subject: 'billing.invoice.paid', kinds: ['event'] });
    });

    it('refuses an event where the receiver takes only requests', () => {
      expectRefused(sealOrder(), 'type_not_allowed', {
        subject: 'orders.created',
        kinds: ['request'],
      });
    });

    it('refuses a type that is not in the contract table', () => {
      const wire = signedOrder({ type: 'orders.deleted' });

      expectRefused(wire, 'type_not_allowed', { subject: 'orders.deleted', kinds: ['event'] });
    });
  });

  describe('a message that arrived on another subject', () => {
    it('is refused as subject_mismatch', () => {
      expectRefused(sealOrder(), 'subject_mismatch', {
        subject: 'orders.cancelled',
        kinds: ['event'],
      });
      expectRefused(sealOrder(), 'subject_mismatch', { kinds: ['event'] });
    });
  });
});
