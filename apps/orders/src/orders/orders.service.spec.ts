import { jest } from '@jest/globals';
import { UnprocessableEntityException } from '@nestjs/common';
import type { DataSource } from 'typeorm';

import type { SecurityEvents } from '@portcullis/audit';
import { MAX_TOTAL_CENTS } from '@portcullis/contracts';
import type { MessageClient, Outbox, OutboxAuditSink } from '@portcullis/messaging';

import type { Catalogue } from '../catalogue/catalogue';
import { OrdersService } from './orders.service';

const ADA = { id: '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f', roles: ['customer'] };

/** A catalogue of the given products; any write fails the test. */
function catalogue(products: Array<{ sku: string; unitPriceCents: number }>) {
  const write = () => Promise.reject(new Error('nothing may be written'));
  const transaction = jest.fn(write);
  const query = jest.fn(write);
  const db = { transaction, query } as unknown as DataSource;
  const active = products.map((p) => ({ ...p, name: p.sku, currency: 'EUR', active: true }));
  const catalogue = { active: () => Promise.resolve(active) } as unknown as Catalogue;
  return { db, catalogue, transaction, query };
}

describe(OrdersService.name, () => {
  describe('placing an order over the total limit', () => {
    it('refuses it with 422 and writes nothing', async () => {
      const {
        db,
        catalogue: products,
        transaction,
        query,
      } = catalogue([
        { sku: 'VAULT-1', unitPriceCents: 2_000_000_000 },
        { sku: 'VAULT-2', unitPriceCents: 2_000_000_000 },
      ]);
      const orders = new OrdersService(
        db,
        {} as MessageClient,
        {} as Outbox,
        {} as SecurityEvents,
        products,
        {} as OutboxAuditSink,
      );

      const placing = orders.place(ADA, {
        items: [
          { sku: 'VAULT-1', quantity: 1000 },
          { sku: 'VAULT-2', quantity: 1000 },
        ],
      });

      await expect(placing).rejects.toThrow(UnprocessableEntityException);
      await expect(placing).rejects.toMatchObject({
        response: { message: [`items: the total must not exceed ${MAX_TOTAL_CENTS}`] },
      });
      expect(transaction).not.toHaveBeenCalled();
      expect(query).not.toHaveBeenCalled();
    });
  });
});
