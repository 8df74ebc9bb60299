import { jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import { RequestContext } from '@portcullis/core';
import {
  Outbox,
  messagingTablesMigration,
  outboxPublishedRowsMigration,
  outboxTraceContextMigration,
  storedOutboxRows,
} from '@portcullis/messaging';

import { type EmbeddedDatabase, openEmbeddedDatabase } from '../../../../jest/embedded-database';
import { CreateOrders1764806500000 } from '../migrations/1764806500000-create-orders';
import { OrderLine } from './order-line.entity';
import { OrderWriter } from './order-writer';
import { Order } from './order.entity';

describe('writing placed orders, on a real database', () => {
  let database: EmbeddedDatabase;
  let db: DataSource;
  let writer: OrderWriter;
  const outbox = new Outbox('orders');

  /** An order of `quantities.length` lines, with its `orders.created` event. */
  const placed = (customerId: string, idempotencyKey: string | null, quantities = [1, 2]) => {
    const id = randomUUID();
    const lines = quantities.map((quantity, index) =>
      Object.assign(new OrderLine(), {
        orderId: id,
        lineNo: index + 1,
        sku: `SKU-${index + 1}`,
        name: `Product ${index + 1}`,
        unitPriceCents: 250,
        quantity,
        lineTotalCents: 250 * quantity,
      }),
    );
    const now = new Date();
    const order = Object.assign(new Order(), {
      id,
      customerId,
      status: 'pending_payment' as const,
      totalCents: lines.reduce((sum, line) => sum + line.lineTotalCents, 0),
      currency: 'EUR',
      idempotencyKey,
      requestHash: idempotencyKey ? 'a'.repeat(64) : null,
      lines,
      createdAt: now,
      updatedAt: now,
    });
    const events = storedOutboxRows(db, 'orders', [
      outbox.row('orders.created', {
        orderId: id,
        customerId,
        totalCents: order.totalCents,
        currency: 'EUR',
      }),
    ]);
    return { order, events };
  };

  const write = ({ order, events }: ReturnType<typeof placed>) => writer.write(order, events);

  /** What the database holds of each order: its lines and its events, or nothing. */
  const stored = async (orderIds: string[]) => {
    const orders = await db.query<Array<{ id: string }>>(
      'SELECT id FROM orders.orders WHERE id = ANY($1)',
      [orderIds],
    );
    const lines = await db.query<Array<{ order_id: string }>>(
      'SELECT order_id FROM orders.order_lines WHERE order_id = ANY($1)',
      [orderIds],
    );
    const events = await db.query<Array<{ payload: { orderId: string } }>>(
      `SELECT payload FROM orders.outbox WHERE type = 'orders.created'`,
    );
    return orderIds.map((id) => ({
      order: orders.some((row) => row.id === id),
      lines: lines.filter((row) => row.order_id === id).length,
      events: events.filter((row) => row.payload.orderId === id).length,
    }));
  };

  beforeAll(async () => {
    database = await openEmbeddedDatabase('order-writer', {
      service: 'orders',
      entities: [],
      migrations: [
        CreateOrders1764806500000,
        messagingTablesMigration('orders'),
        outboxTraceContextMigration('orders'),
        outboxPublishedRowsMigration('orders'),
      ],
    });
    db = database.db;
    writer = new OrderWriter(db);
  }, 60_000);

  afterAll(() => database?.close());

  afterEach(() => jest.restoreAllMocks());

  it('writes the orders placed in one turn with one statement, each with its lines and event', async () => {
    const orders = [
      placed(randomUUID(), 'k-1', [1]),
      placed(randomUUID(), null, [1, 2, 3]),
      placed(randomUUID(), 'k-1', [4, 5]),
    ];
    const query = jest.spyOn(db, 'query');

    await Promise.all(orders.map(write));

    expect(query).toHaveBeenCalledTimes(1);
    expect(await stored(orders.map(({ order }) => order.id))).toEqual([
      { order: true, lines: 1, events: 1 },
      { order: true, lines: 3, events: 1 },
      { order: true, lines: 2, events: 1 },
    ]);
  });

  it('skips an order whose key was taken before, with its rows, and writes the rest', async () => {
    const customer = randomUUID();
    const first = placed(customer, 'taken');
    expect(await write(first)).toBe(true);

    const again = placed(customer, 'taken');
    const other = placed(customer, 'free');
    const query = jest.spyOn(db, 'query');
    const outcomes = await Promise.allSettled([write(again), write(other)]);

    expect(outcomes).toEqual([
      { status: 'fulfilled', value: false },
      { status: 'fulfilled', value: true },
    ]);
    expect(query).toHaveBeenCalledTimes(1);
    expect(await stored([first.order.id, again.order.id, other.order.id])).toEqual([
      { order: true, lines: 2, events: 1 },
      { order: false, lines: 0, events: 0 },
      { order: true, lines: 2, events: 1 },
    ]);
  });

  it('writes one of two orders sent with the same key in the same turn', async () => {
    const customer = randomUUID();
    const orders = [placed(customer, 'twice'), placed(customer, 'twice')];

    const outcomes = await Promise.all(orders.map(write));

    expect(outcomes).toEqual([true, false]);
    const held = await stored(orders.map(({ order }) => order.id));
    expect(held.filter((order) => order.order)).toEqual([{ order: true, lines: 2, events: 1 }]);
    expect(held.filter((order) => !order.order)).toEqual([{ order: false, lines: 0, events: 0 }]);
  });

  it('fails only the order the database refuses, and writes the others of its statement', async () => {
    // A quantity of 0 breaks a check of order_lines: the shared statement fails as a whole.
    const bad = placed(randomUUID(), null, [1, 0]);
    const good = [placed(randomUUID(), null), placed(randomUUID(), 'k-2')];

    const outcomes = await Promise.allSettled([write(good[0]), write(bad), write(good[1])]);

    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    expect(await stored([good[0].order.id, bad.order.id, good[1].order.id])).toEqual([
      { order: true, lines: 2, events: 1 },
      { order: false, lines: 0, events: 0 },
      { order: true, lines: 2, events: 1 },
    ]);
  });

  it("runs the shared statement in no request's context, and a statement alone in its order's", async () => {
    const contexts: Array<string | undefined> = [];
    const query = db.query.bind(db);
    jest.spyOn(db, 'query').mockImplementation((text, parameters) => {
      contexts.push(RequestContext.correlationId());
      return query(text, parameters);
    });

    // The bad order fails the shared statement: then each order goes alone, in its context.
    const good = RequestContext.run({ correlationId: 'corr-good' }, () =>
      write(placed(randomUUID(), null)),
    );
    const bad = RequestContext.run({ correlationId: 'corr-bad' }, () =>
      write(placed(randomUUID(), null, [0])),
    );
    const outcomes = await Promise.allSettled([good, bad]);

    expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected']);
    expect(contexts).toEqual([undefined, 'corr-good', 'corr-bad']);
  });

  it('runs the statement of an order alone in its turn in its request context', async () => {
    const contexts: Array<string | undefined> = [];
    const query = db.query.bind(db);
    jest.spyOn(db, 'query').mockImplementation((text, parameters) => {
      contexts.push(RequestContext.correlationId());
      return query(text, parameters);
    });

    const written = await RequestContext.run({ correlationId: 'corr-alone' }, () =>
      write(placed(randomUUID(), 'alone')),
    );

    expect(written).toBe(true);
    expect(contexts).toEqual(['corr-alone']);
  });

  it('fails every order of a statement the database could not run, without trying each alone', async () => {
    const orders = [placed(randomUUID(), null), placed(randomUUID(), null)];
    const lost = new Error('Connection terminated unexpectedly');
    const query = jest.spyOn(db, 'query').mockRejectedValueOnce(lost);

    const outcomes = await Promise.allSettled(orders.map(write));

    expect(outcomes).toEqual([
      { status: 'rejected', reason: lost },
      { status: 'rejected', reason: lost },
    ]);
    expect(query).toHaveBeenCalledTimes(1);
    expect(await stored(orders.map(({ order }) => order.id))).toEqual([
      { order: false, lines: 0, events: 0 },
      { order: false, lines: 0, events: 0 },
    ]);
  });

  it('writes more orders than one statement holds, all of them', async () => {
    const orders = Array.from({ length: 150 }, () => placed(randomUUID(), randomUUID(), [1]));
    const query = jest.spyOn(db, 'query');

    await Promise.all(orders.map(write));

    expect(query).toHaveBeenCalledTimes(3);
    const held = await stored(orders.map(({ order }) => order.id));
    expect(held.every((order) => order.order && order.lines === 1 && order.events === 1)).toBe(
      true,
    );
  });
});
