import { afterEach, beforeEach, describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';

import type { AuditRecord } from './audit-record';
import type { AuditSink } from './audit-sink';
import { SecurityEvents } from './security-events.service';

/** An outbox that refuses, as PostgreSQL would, any batch holding a record of a poisoned type. */
class RefusingSink implements AuditSink {
  readonly written: AuditRecord[] = [];
  available = true;

  write(records: readonly AuditRecord[]): Promise<void> {
    if (!this.available) return Promise.reject(connectionError());
    if (records.some((record) => record.type === 'poisoned')) {
      return Promise.reject(
        Object.assign(new Error('unsupported Unicode escape'), { code: '22P05' }),
      );
    }
    this.written.push(...records);
    return Promise.resolve();
  }

  writeIn(): Promise<void> {
    return Promise.resolve();
  }
}

function connectionError(): Error {
  return Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
}

describe(SecurityEvents.name, () => {
  let events: SecurityEvents;
  let orders: RefusingSink;
  let billing: RefusingSink;

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    events = new SecurityEvents();
    orders = new RefusingSink();
    billing = new RefusingSink();
    events.attach('orders', orders);
    events.attach('billing', billing);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  describe('when the database refuses one record for its content', () => {
    it('drops that record and writes the others of its batch', async () => {
      events.record({ type: 'first', outcome: 'allowed', service: 'orders' });
      events.record({ type: 'poisoned', outcome: 'denied', service: 'orders' });
      events.record({ type: 'third', outcome: 'allowed', service: 'orders' });

      await events.flush();

      expect(orders.written.map((record) => record.type)).toEqual(['first', 'third']);
    });

    it('keeps writing the records that come after it', async () => {
      events.record({ type: 'poisoned', outcome: 'denied', service: 'orders' });
      await events.flush();

      events.record({ type: 'later', outcome: 'allowed', service: 'orders' });
      await events.flush();

      expect(orders.written.map((record) => record.type)).toEqual(['later']);
    });
  });

  describe('when the database is away', () => {
    it('keeps the records for a later attempt and still writes other services', async () => {
      orders.available = false;
      events.record({ type: 'kept', outcome: 'allowed', service: 'orders' });
      events.record({ type: 'elsewhere', outcome: 'allowed', service: 'billing' });

      await events.flush();
      expect(orders.written).toEqual([]);
      expect(billing.written.map((record) => record.type)).toEqual(['elsewhere']);

      orders.available = true;
      await events.flush();
      expect(orders.written.map((record) => record.type)).toEqual(['kept']);
    });
  });
});
