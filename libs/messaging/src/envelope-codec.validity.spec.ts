import { randomUUID } from 'node:crypto';

import { PublicJwk, TokenKeysReply } from '@portcullis/contracts';

import {
  AS_EVENT,
  EnvelopeFixture,
  ORDER,
  T0,
  TTL_MS,
  orderCreatedEnvelope,
  refusalOf,
} from '../../../jest/signed-envelopes';
import type { RefusalReason } from './envelope';
import { EnvelopeCodec, type OpenOptions } from './envelope-codec';
import { DURABLE_EVENT_TTL_MS } from './durable/event-stream';

const AS_REPLY: OpenOptions = { kinds: ['reply'] };
const JWK = { kty: 'RSA', kid: 'key-1', use: 'sig', alg: 'RS256', n: 'q83v', e: 'AQAB' };

describe(EnvelopeCodec.name, () => {
  let fixture: EnvelopeFixture;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
  });

  afterAll(() => {
    fixture.remove();
  });

  const sealOrder = (payload: unknown = ORDER, issuedAt = T0, ttlMs = TTL_MS): Buffer => {
    const sender = fixture.codec(ttlMs);
    sender.clock.now = issuedAt;
    return sender.codec.seal('orders', 'event', 'orders.created', payload, { correlationId: 'c' });
  };

  const sealKeysReply = (payload: unknown, sender: 'auth' | 'orders' = 'auth'): Buffer =>
    fixture.codec().codec.seal(sender, 'reply', 'auth.keys.query', payload, {
      rid: 'request-7',
      correlationId: 'c',
    });

  /** Opens at `now` with a fresh codec; checks the refusal and the security event it records. */
  function expectRefused(wire: Uint8Array, reason: RefusalReason, options = AS_EVENT, now = T0) {
    const { codec, events, clock } = fixture.codec();
    clock.now = now;
    expect(refusalOf(codec, wire, options)).toBe(reason);
    expect(events.recorded).toEqual([
      expect.objectContaining({ type: 'message.refused', outcome: 'denied', reason }),
    ]);
  }

  function openAt(now: number, wire: Uint8Array, options = AS_EVENT) {
    const { codec, clock } = fixture.codec();
    clock.now = now;
    return codec.open(wire, options);
  }

  describe('a message past its expiry', () => {
    it('is accepted until the last millisecond of its lifetime', () => {
      expect(openAt(T0 + TTL_MS - 1, sealOrder()).payload).toEqual(ORDER);
    });

    it('is refused as expired from then on', () => {
      expectRefused(sealOrder(), 'expired', AS_EVENT, T0 + TTL_MS);
      expectRefused(sealOrder(), 'expired', AS_EVENT, T0 + 10 * TTL_MS);
    });
  });

  describe('a message issued in the future', () => {
    it('is accepted within 30 seconds of clock skew', () => {
      expect(openAt(T0, sealOrder(ORDER, T0 + 30_000)).payload).toEqual(ORDER);
    });

    it('is refused as not_yet_valid beyond that', () => {
      expectRefused(sealOrder(ORDER, T0 + 30_001), 'not_yet_valid');
    });

    it('is refused as not_yet_valid when it claims a longer lifetime than events may have', () => {
      expectRefused(sealOrder(ORDER, T0, 2 * DURABLE_EVENT_TTL_MS), 'not_yet_valid');
    });
  });

  describe('a message delivered twice', () => {
    it('is accepted the first time and refused as replayed the second', () => {
      const { codec, events } = fixture.codec();
      const wire = sealOrder();

      expect(codec.open(wire, AS_EVENT).payload).toEqual(ORDER);
      expect(refusalOf(codec, Buffer.from(wire), AS_EVENT)).toBe('replayed');
      expect(events.recorded).toEqual([expect.objectContaining({ reason: 'replayed' })]);
    });

    it('is refused as replayed when re-signed with the same message id', () => {
      const { codec } = fixture.codec();
      const id = randomUUID();
      const kid = fixture.kidOf('orders');
      codec.open(fixture.wireOf(orderCreatedEnvelope(ORDER, { id }), kid), AS_EVENT);

      const again = fixture.wireOf(orderCreatedEnvelope(ORDER, { id, corr: 'other' }), kid);

      expect(refusalOf(codec, again, AS_EVENT)).toBe('replayed');
    });
  });

  describe('a payload that does not match its contract', () => {
    it.each<[string, unknown]>([
      ['an unknown extra field', { ...ORDER, discountCents: 100 }],
      ['a number sent as a string', { ...ORDER, totalCents: '2500' }],
      ['a fractional amount', { ...ORDER, totalCents: 12.5 }],
      ['a missing field', { orderId: ORDER.orderId, customerId: ORDER.customerId }],
      ['a lowercase currency', { ...ORDER, currency: 'eur' }],
      ['null', null],
      ['an array', [ORDER]],
      ['a string', 'orders.created'],
    ])('refuses %s as invalid_payload', (_, payload) => {
      expectRefused(sealOrder(payload), 'invalid_payload');
    });

    it('returns the payload as an instance of its contract class', () => {
      const payload = openAt(T0, sealOrder()).payload;

      expect(payload?.constructor.name).toBe('OrderCreatedEvent');
    });
  });

  describe('a reply to auth.keys.query', () => {
    it('is accepted from auth with its response validated as TokenKeysReply', () => {
      const wire = sealKeysReply({ response: { keys: [JWK] }, isDisposed: true });

      const reply = openAt(T0, wire, AS_REPLY);

      expect(reply.requestId).toBe('request-7');
      const { response } = reply.payload as { response: TokenKeysReply };
      expect(response).toBeInstanceOf(TokenKeysReply);
      expect(response.keys[0]).toBeInstanceOf(PublicJwk);
      expect(response).toEqual({ keys: [JWK] });
    });

    it('passes an error reply through without a response', () => {
      const wire = sealKeysReply({ err: 'no keys', isDisposed: true });

      expect(openAt(T0, wire, AS_REPLY).payload).toEqual({ err: 'no keys', isDisposed: true });
    });

    it.each<[string, unknown]>([
      ['a key with private parts', { keys: [{ ...JWK, d: 'secret' }] }],
      ['a key of another type', { keys: [{ ...JWK, kty: 'EC' }] }],
      ['another algorithm', { keys: [{ ...JWK, alg: 'HS256' }] }],
      ['keys that are not a list', { keys: JWK }],
      ['more than 16 keys', { keys: Array.from({ length: 17 }, () => JWK) }],
    ])('refuses a response with %s as invalid_payload', (_, response) => {
      expectRefused(sealKeysReply({ response, isDisposed: true }), 'invalid_payload', AS_REPLY);
    });

    it('refuses a reply payload that is not an object', () => {
      expectRefused(sealKeysReply('keys'), 'invalid_payload', AS_REPLY);
    });

    it('refuses a reply from a service that does not answer that request', () => {
      const wire = sealKeysReply({ response: { keys: [JWK] }, isDisposed: true }, 'orders');

      expectRefused(wire, 'type_not_allowed', AS_REPLY);
    });

    it('refuses a reply where the receiver takes only events and requests', () => {
      const wire = sealKeysReply({ response: { keys: [JWK] }, isDisposed: true });

      expectRefused(wire, 'type_not_allowed', { kinds: ['event', 'request'] });
    });
  });
});
