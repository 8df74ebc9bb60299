import { randomUUID } from 'node:crypto';

import fc from 'fast-check';

import {
  AuditRecordPayload,
  AuditRecordedEvent,
  MESSAGE_CONTRACTS,
  OrderCreatedEvent,
  SessionsRevokedEvent,
} from '@portcullis/contracts';

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

/** An object with an own key of that name, as `JSON.parse` makes it, even for `__proto__`. */
function withKey(object: object, key: string, value: unknown): object {
  const copy = { ...object };
  Object.defineProperty(copy, key, { value, enumerable: true, writable: true, configurable: true });
  return copy;
}

function asParsedJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value));
}

/** Keys class-transformer drops without a word, which the compiled validators refuse. */
const DROPPED_KEYS = ['__proto__', 'constructor', 'toString', 'hasOwnProperty'];

function hasDroppedKey(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return value.some(hasDroppedKey);
  return Object.entries(value).some(
    ([key, field]) => key === '__proto__' || key in Object.prototype || hasDroppedKey(field),
  );
}

/** Mostly the first, valid, value; sometimes one of the others. */
function mostly<T>(valid: fc.Arbitrary<T>, ...others: unknown[]): fc.Arbitrary<unknown> {
  return fc.oneof({ weight: 12, arbitrary: valid }, fc.constantFrom(...others));
}

/** Adds, sometimes, one field of a hostile name or an unknown one to an object. */
function hostile<T extends object>(object: fc.Arbitrary<T>): fc.Arbitrary<object> {
  return fc.oneof(
    { weight: 12, arbitrary: object },
    fc
      .tuple(object, fc.constantFrom(...DROPPED_KEYS, 'extra'), fc.constantFrom(1, 'x', null, {}))
      .map(([base, key, value]) => withKey(base, key, value)),
  );
}

const ACTOR = hostile(
  fc.record(
    {
      userId: mostly(fc.uuid(), '', 'u'.repeat(129), 7),
      roles: mostly(
        fc.array(fc.constantFrom('customer', 'admin'), { maxLength: 2 }),
        ['Admin'],
        [''],
        ['a'.repeat(33)],
        [3],
        Array.from({ length: 9 }, () => 'admin'),
        'admin',
        null,
        [['admin']],
      ),
      sessionId: mostly(fc.uuid(), null, 1),
      clientIp: mostly(fc.constantFrom('127.0.0.1', '::1'), 'x'.repeat(65)),
    },
    { requiredKeys: [] },
  ),
);

const RESOURCE = hostile(
  fc.record(
    {
      type: mostly(fc.constantFrom('order', 'invoice'), '', 't'.repeat(65), 5, null),
      id: mostly(fc.uuid(), null, 'i'.repeat(129)),
    },
    { requiredKeys: ['type'] },
  ),
);

const DETAILS = mostly(
  fc.dictionary(
    fc.oneof({ weight: 12, arbitrary: fc.string({ maxLength: 4 }) }, fc.constant('k'.repeat(65))),
    fc.oneof(
      fc.string({ maxLength: 3 }),
      fc.integer(),
      fc.boolean(),
      fc.constantFrom(null, Number.NaN, 'v'.repeat(257), {}, [1]),
    ),
    { maxKeys: 3 },
  ),
  Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, i])),
  withKey({ lines: 1 }, 'constructor', 'x'),
  withKey({}, '__proto__', null),
  null,
  'details',
  [],
  [{ a: 1 }],
);

/** Audit records: valid ones, and ones wrong in one or more places, nested parts included. */
const RECORD = hostile(
  fc.record(
    {
      id: mostly(fc.uuid({ version: 4 }), 'not-a-uuid', randomUUID().toUpperCase(), 4),
      time: mostly(
        fc.constantFrom('2030-01-01T00:00:00Z', '2030-01-01T00:00:00.123+02:00'),
        '2030-02-30T00:00:00Z',
        'yesterday',
        0,
      ),
      service: mostly(fc.constantFrom('auth', 'orders', 'billing'), 'payments', null),
      type: mostly(fc.constantFrom('order.created', 'http.request'), 'Bad Type', ''),
      outcome: mostly(fc.constantFrom('allowed', 'denied', 'failed'), 'maybe'),
      actor: fc.oneof(
        { weight: 12, arbitrary: ACTOR },
        fc.constantFrom(null, 'admin', 3, []),
        ACTOR.map((actor) => [actor]),
      ),
      resource: fc.oneof(
        { weight: 12, arbitrary: RESOURCE },
        fc.constantFrom(null, true),
        RESOURCE.map((resource) => [[resource]]),
      ),
      correlationId: mostly(fc.uuid(), 'a b', ''),
      traceparent: mostly(
        fc.constant(`00-${'a'.repeat(32)}-${'b'.repeat(16)}-01`),
        `00-${'A'.repeat(32)}-${'b'.repeat(16)}-01`,
      ),
      reason: mostly(fc.constantFrom('expired', 'no_stock'), 'r'.repeat(201), 1),
      details: DETAILS,
    },
    { requiredKeys: ['id', 'time', 'service', 'type', 'outcome', 'correlationId'] },
  ),
);

/** One valid audit record. */
const RECORD_1 = {
  id: randomUUID(),
  time: '2030-01-01T00:00:00Z',
  service: 'orders',
  type: 'order.created',
  outcome: 'allowed',
  actor: { userId: randomUUID(), roles: ['customer'] },
  resource: { type: 'order', id: randomUUID() },
  correlationId: randomUUID(),
  details: { lines: 2 },
};

const BATCH = fc.oneof(
  fc.record({
    records: fc.oneof(
      { weight: 8, arbitrary: fc.array(RECORD, { maxLength: 3 }) },
      fc.array(fc.oneof(RECORD, fc.constantFrom(null, 1, 'record', [], {})), { maxLength: 3 }),
      RECORD.map((record) => [[record]]),
      RECORD,
    ),
  }),
  RECORD.map((record) => ({ records: [record], extra: true })),
  RECORD.map((record) => withKey({ records: [record] }, '__proto__', { records: [] })),
);

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

  it.each([
    ['a batch of audit records', AuditRecordedEvent, BATCH],
    ['one audit record', AuditRecordPayload, RECORD],
  ] as const)(
    'accepts and refuses exactly what class-validator does for %s, nested parts included',
    (_name, type, payloads) => {
      const validate = payloadValidator(type);
      let accepted = 0;
      fc.assert(
        // As the envelope codec hands them over: parsed from JSON, `__proto__` keys included.
        fc.property(payloads.map(asParsedJson), (payload) => {
          const actual = validate(payload);
          if (hasDroppedKey(payload)) {
            expect(actual).toBeUndefined();
            return;
          }
          const expected = validateWithClassValidator(type, payload);
          expect(actual === undefined).toBe(expected === undefined);
          if (expected !== undefined) {
            accepted += 1;
            expect(actual).toStrictEqual(expected);
          }
        }),
        { numRuns: 3000 },
      );
      // The generators must reach the accepting side too, or the agreement says little.
      expect(accepted).toBeGreaterThan(20);
    },
  );

  it('turns the records of a batch into instances of their classes', () => {
    const record = { ...RECORD_1 };

    const batch = payloadValidator(AuditRecordedEvent)({ records: [record] });

    expect(batch).toBeInstanceOf(AuditRecordedEvent);
    const [copy] = (batch as AuditRecordedEvent).records;
    expect(copy).toBeInstanceOf(AuditRecordPayload);
    expect(copy.actor?.constructor.name).toBe('AuditActorPayload');
    expect(copy.resource?.constructor.name).toBe('AuditResourcePayload');
    expect(JSON.parse(JSON.stringify(batch))).toEqual({ records: [record] });
  });

  it.each([
    ['no record', []],
    ['a record of the wrong shape', [{ id: randomUUID() }]],
    ['a record that is not an object', ['record']],
    ['more records than a batch may hold', Array.from({ length: 501 }, () => ({ ...RECORD_1 }))],
    ['a nested key class-transformer would drop', [withKey({}, 'constructor', 'x')]],
  ])('refuses a batch with %s', (_situation, records) => {
    expect(payloadValidator(AuditRecordedEvent)({ records })).toBeUndefined();
  });

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
