import { randomUUID } from 'node:crypto';

import fc from 'fast-check';

import { MESSAGE_CONTRACTS, OrderCreatedEvent, SessionsRevokedEvent } from '@portcullis/contracts';

import { payloadValidator, validateWithClassValidator } from './payload-validators';

type PayloadClass = new () => object;

/** Every payload and reply class of the contract table, earlier payload forms included. */
const CLASSES: PayloadClass[] = [
  ...new Set(
    Object.values(MESSAGE_CONTRACTS).flatMap((contract): PayloadClass[] =>
      contract.kind === 'request'
        ? [contract.payload, contract.reply]
        : 'legacyPayload' in contract
          ? [contract.payload, contract.legacyPayload]
          : [contract.payload],
    ),
  ),
];

/** Field names of the contracts, and a few they do not have. */
const NAMES = [
  'orderId',
  'customerId',
  'invoiceId',
  'accountId',
  'totalCents',
  'currency',
  'paidAt',
  'outcome',
  'kid',
  'keys',
  'sessionIds',
  'reason',
  'relevantUntil',
  'activeKid',
  'withdrawnKids',
  'since',
  'sessions',
  'status',
  'ownerId',
];

/** Values that pass some contract field and fail others. */
const VALUE = fc.oneof(
  fc.constant(randomUUID()),
  fc.uuid(),
  fc.constantFrom('EUR', 'eur', 'void', 'paid', 'logout', 'abc_DEF-1', '', '2030-01-01T00:00:00Z'),
  fc.constantFrom('2030-01-01', '2030-02-30T00:00:00Z', '1'),
  fc.integer({ min: -5, max: 5 }),
  fc.constantFrom(100_000_000_000, 100_000_000_001, 1.5, Number.NaN),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.constantFrom(randomUUID(), 'kid-1', 7), { maxLength: 3 }),
  fc.constant({ kty: 'RSA' }),
);

const PAYLOAD = fc.dictionary(fc.constantFrom(...NAMES), VALUE, { maxKeys: 6 });

describe(payloadValidator.name, () => {
  it.each(CLASSES.map((type) => [type.name, type] as const))(
    'accepts and refuses exactly what class-validator does for %s',
    (_name, type) => {
      const validate = payloadValidator(type);
      fc.assert(
        fc.property(PAYLOAD, (payload) => {
          const expected = validateWithClassValidator(type, payload);
          const actual = validate(payload);
          expect(actual === undefined).toBe(expected === undefined);
          if (expected !== undefined) {
            expect(actual?.constructor).toBe(type);
            expect(actual).toEqual(expected);
          }
        }),
        { numRuns: 400 },
      );
    },
  );

  it('returns a valid payload as an instance of its class', () => {
    const payload = {
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 1,
      currency: 'EUR',
    };

    const instance = payloadValidator(OrderCreatedEvent)(payload);

    expect(instance).toBeInstanceOf(OrderCreatedEvent);
    expect(instance).toEqual(payload);
  });

  it.each([
    ['an unknown field', { extra: 1 }],
    ['a quantity as text', { totalCents: '2500' }],
    ['a missing field', { currency: undefined }],
    ['a prototype key', JSON.parse('{"__proto__": {"admin": true}}') as object],
  ])('refuses %s', (_situation, change) => {
    const payload = {
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 2500,
      currency: 'EUR',
      ...change,
    };

    expect(payloadValidator(OrderCreatedEvent)(payload)).toBeUndefined();
  });

  it('checks every element of a list field', () => {
    const revoked = {
      accountId: randomUUID(),
      sessionIds: [randomUUID(), 'not-a-uuid'],
      reason: 'logout',
      relevantUntil: '2030-01-01T00:00:00Z',
    };

    expect(payloadValidator(SessionsRevokedEvent)(revoked)).toBeUndefined();
    expect(
      payloadValidator(SessionsRevokedEvent)({ ...revoked, sessionIds: [randomUUID()] }),
    ).toBeInstanceOf(SessionsRevokedEvent);
  });

  it('refuses anything but an object', () => {
    for (const value of [null, 'text', 3, [], undefined]) {
      expect(payloadValidator(OrderCreatedEvent)(value)).toBeUndefined();
    }
  });
});
