import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import type { AuditRecord } from '@portcullis/audit';
import type { OrderCreatedEvent } from '@portcullis/contracts';
import { RequestContext } from '@portcullis/core';
import {
  Inbox,
  Outbox,
  OutboxAuditSink,
  VerifiedMessage,
  messagingTablesMigration,
  outboxPublishedRowsMigration,
  outboxTraceContextMigration,
} from '@portcullis/messaging';

import { RecordingSecurityEvents } from '../../../../jest/signed-envelopes';
import { type EmbeddedDatabase, openEmbeddedDatabase } from '../../../../jest/embedded-database';
import { CreateBilling1764806600000 } from '../migrations/1764806600000-create-billing';
import { InvoicesService } from './invoices.service';

describe("billing's inbox statement that opens invoices, on a real database", () => {
  let database: EmbeddedDatabase;
  let db: DataSource;
  let events: RecordingSecurityEvents;
  let inbox: Inbox;
  let invoices: InvoicesService;

  const orderCreated = (order: OrderCreatedEvent): VerifiedMessage<OrderCreatedEvent> =>
    new VerifiedMessage(
      randomUUID(),
      'event',
      'orders.created',
      'orders',
      Date.now(),
      'c',
      undefined,
      order,
    );

  const open = (message: VerifiedMessage<OrderCreatedEvent>, correlationId: string) =>
    RequestContext.run({ correlationId }, () =>
      inbox.onceIn(message, invoices.opening, {
        invoiceId: randomUUID(),
        order: message.payload,
      }),
    );

  const newOrder = (): OrderCreatedEvent => ({
    orderId: randomUUID(),
    customerId: randomUUID(),
    totalCents: 1250,
    currency: 'EUR',
  });

  beforeAll(async () => {
    database = await openEmbeddedDatabase('invoice-opening', {
      service: 'billing',
      entities: [],
      migrations: [
        CreateBilling1764806600000,
        messagingTablesMigration('billing'),
        outboxTraceContextMigration('billing'),
        outboxPublishedRowsMigration('billing'),
      ],
    });
    db = database.db;
    events = new RecordingSecurityEvents();
    const outbox = new Outbox('billing');
    const sink = new OutboxAuditSink('billing', db, outbox);
    // Opening invoices needs none of the payment provider and field encryption.
    invoices = new InvoicesService(
      db,
      outbox,
      undefined as never,
      events,
      undefined as never,
      sink,
    );
    inbox = new Inbox('billing', db, events, sink);
  }, 60_000);

  afterAll(() => database?.close());

  it('opens the invoices of new orders only, and audits what it did', async () => {
    const replayed = orderCreated(newOrder());
    expect(await open(replayed, 'corr-first')).toBe(true);
    await db.query('DELETE FROM billing.outbox');
    events.announced.splice(0);
    // An order cancelled before its event arrived: its invoice exists, void.
    const cancelled = newOrder();
    await db.query(
      `INSERT INTO billing.invoices (id, order_id, customer_id, amount_cents, currency, status)
       VALUES ($1, $2, $3, $4, $5, 'void')`,
      [randomUUID(), cancelled.orderId, cancelled.customerId, 1250, 'EUR'],
    );
    const fresh = orderCreated(newOrder());
    const late = orderCreated(cancelled);

    const applied = await Promise.all([
      open(fresh, 'corr-fresh'),
      open(late, 'corr-late'),
      open(replayed, 'corr-again'),
    ]);

    expect(applied).toEqual([true, true, false]);
    expect(events.reasons).toEqual(['replayed']);
    const rows = await db.query<Array<{ order_id: string; status: string; amount_cents: string }>>(
      `SELECT order_id, status, amount_cents FROM billing.invoices WHERE order_id = ANY($1)`,
      [[fresh.payload.orderId, cancelled.orderId, replayed.payload.orderId]],
    );
    const statusOf = new Map(rows.map((row) => [row.order_id, row.status]));
    expect(statusOf.get(fresh.payload.orderId)).toBe('open');
    expect(statusOf.get(cancelled.orderId)).toBe('void');
    expect(rows).toHaveLength(3);

    const [audit] = await db.query<Array<{ payload: { records: AuditRecord[] } }>>(
      `SELECT payload FROM billing.outbox WHERE type = 'billing.audit.recorded'`,
    );
    const records = audit.payload.records;
    expect(records.map((r) => [r.type, r.correlationId])).toEqual([
      ['invoice.opened', 'corr-fresh'],
      ['message.handled', 'corr-fresh'],
      ['message.handled', 'corr-late'],
    ]);
    expect(records[0].details).toEqual({ orderId: fresh.payload.orderId, amountCents: 1250 });
    expect(events.announced.map((r) => r.id)).toEqual(records.map((r) => r.id));
  });
});
