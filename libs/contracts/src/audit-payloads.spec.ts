import { randomUUID } from 'node:crypto';

import { plainToInstance } from 'class-transformer';
import { validateSync } from 'class-validator';

import { AuditRecordedEvent, auditBatchMessageId } from './audit-payloads';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe(auditBatchMessageId.name, () => {
  const ids = [randomUUID(), randomUUID(), randomUUID()];

  it('is a UUID that envelopes accept', () => {
    expect(auditBatchMessageId(ids)).toMatch(UUID_V4);
  });

  it('is the same for the same records', () => {
    expect(auditBatchMessageId([...ids])).toBe(auditBatchMessageId(ids));
  });

  it('differs for other records, fewer records, or the same records in another order', () => {
    const others = [
      auditBatchMessageId([randomUUID(), ...ids.slice(1)]),
      auditBatchMessageId(ids.slice(0, 2)),
      auditBatchMessageId([...ids].reverse()),
      ids[0],
    ];

    expect(new Set([auditBatchMessageId(ids), ...others]).size).toBe(5);
  });
});

describe(AuditRecordedEvent.name, () => {
  const record = {
    id: randomUUID(),
    time: new Date().toISOString(),
    service: 'orders',
    type: 'order.created',
    outcome: 'allowed',
    correlationId: 'c-1',
  };
  const problems = (plain: object) =>
    validateSync(plainToInstance(AuditRecordedEvent, plain), {
      whitelist: true,
      forbidNonWhitelisted: true,
    });

  it('accepts a batch of records', () => {
    expect(problems({ records: [record, { ...record, id: randomUUID() }] })).toEqual([]);
  });

  it.each([
    ['records nested in an array', { records: [[record]] }],
    ['a record that is a string', { records: ['record'] }],
    ['an actor that is an array', { records: [{ ...record, actor: [{ userId: 'x' }] }] }],
    ['a resource that is a number', { records: [{ ...record, resource: 7 }] }],
  ])('refuses %s', (_, plain) => {
    expect(problems(plain)).not.toEqual([]);
  });
});
