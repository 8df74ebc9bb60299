import type { ServiceName } from '@portcullis/core';

import { MESSAGE_CONTRACTS, contractOf, maySend } from './message-types';

type Kind = 'event' | 'request' | 'reply';

describe(maySend.name, () => {
  describe('for an event', () => {
    it.each<[string, ServiceName, boolean]>([
      ['orders.created', 'orders', true],
      ['orders.created', 'billing', false],
      ['orders.created', 'auth', false],
      ['orders.cancelled', 'orders', true],
      ['orders.cancelled', 'billing', false],
      ['billing.invoice.paid', 'billing', true],
      ['billing.invoice.paid', 'orders', false],
    ])('%s from %s: %s', (type, sender, allowed) => {
      expect(maySend(type, sender, 'event')).toBe(allowed);
    });

    it('is refused as a request or a reply, even from its publisher', () => {
      expect(maySend('orders.created', 'orders', 'request')).toBe(false);
      expect(maySend('orders.created', 'orders', 'reply')).toBe(false);
    });
  });

  describe('for a request', () => {
    it.each<[string, ServiceName, boolean]>([
      ['billing.invoice.void', 'orders', true],
      ['billing.invoice.void', 'billing', false],
      ['billing.invoice.void', 'auth', false],
      ['auth.keys.query', 'auth', true],
      ['auth.keys.query', 'orders', true],
      ['auth.keys.query', 'billing', true],
    ])('%s asked by %s: %s', (type, sender, allowed) => {
      expect(maySend(type, sender, 'request')).toBe(allowed);
    });

    it('is refused as an event', () => {
      expect(maySend('billing.invoice.void', 'orders', 'event')).toBe(false);
      expect(maySend('billing.invoice.void', 'billing', 'event')).toBe(false);
    });
  });

  describe('for a reply', () => {
    it.each<[string, ServiceName, boolean]>([
      ['billing.invoice.void', 'billing', true],
      ['billing.invoice.void', 'orders', false],
      ['auth.keys.query', 'auth', true],
      ['auth.keys.query', 'orders', false],
      ['auth.keys.query', 'billing', false],
    ])('%s answered by %s: %s', (type, sender, allowed) => {
      expect(maySend(type, sender, 'reply')).toBe(allowed);
    });
  });

  describe('for a type that is not in the table', () => {
    it.each([
      'orders.deleted',
      'orders.*',
      '',
      '__proto__',
      'constructor',
      'toString',
      'hasOwnProperty',
      'valueOf',
    ])('refuses %p from every service in every role', (type) => {
      for (const sender of ['auth', 'orders', 'billing'] as const) {
        for (const kind of ['event', 'request', 'reply'] as const satisfies Kind[]) {
          expect({ sender, kind, allowed: maySend(type, sender, kind) }).toEqual({
            sender,
            kind,
            allowed: false,
          });
        }
      }
    });
  });
});

describe(contractOf.name, () => {
  it('finds every listed type', () => {
    for (const type of Object.keys(MESSAGE_CONTRACTS)) {
      expect(contractOf(type)).toBe(MESSAGE_CONTRACTS[type as keyof typeof MESSAGE_CONTRACTS]);
    }
  });

  it.each(['__proto__', 'constructor', 'orders'])('knows no contract named %p', (type) => {
    expect(contractOf(type)).toBeUndefined();
  });
});
