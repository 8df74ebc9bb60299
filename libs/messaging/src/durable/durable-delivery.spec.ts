import { describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import type { AuditRecord } from '@portcullis/audit';
import { RequestContext } from '@portcullis/core';

import { RecordingSecurityEvents } from '../../../../jest/signed-envelopes';
import { type EmbeddedDatabase, openEmbeddedDatabase } from '../../../../jest/embedded-database';
import { VerifiedMessage } from '../envelope';
import { MAX_DELIVERIES } from './event-stream';
import { InboxRecord } from './inbox-record.entity';
import { Inbox, type InboxStatementEffect } from './inbox';
import { InProcessEventStream } from './in-process-event-stream';
import { messagingTablesMigration } from './messaging-tables.migration';
import { outboxTraceContextMigration } from './outbox-trace-context.migration';
import { OUTBOX_LEASE_SECONDS, Outbox, type StoredOutboxRow, onOutboxWritten } from './outbox';
import { OutboxAuditSink } from './outbox-audit-sink';
import { OutboxRecord } from './outbox-record.entity';

/** billing's outbox and inbox on an embedded database of their own. */
function openMessagingTables(label: string): Promise<EmbeddedDatabase> {
  return openEmbeddedDatabase(label, {
    service: 'billing',
    entities: [OutboxRecord, InboxRecord],
    migrations: [messagingTablesMigration('billing'), outboxTraceContextMigration('billing')],
  });
}

/** Of three deliveries, the middle one failed, and only the others are in the inbox. */
async function expectOnlyTheMiddleOneFailed(
  db: DataSource,
  outcomes: ReadonlyArray<PromiseSettledResult<unknown>>,
  ids: readonly string[],
): Promise<void> {
  expect(outcomes.map((outcome) => outcome.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
  const recorded = await db
    .getRepository(InboxRecord)
    .findBy(ids.map((messageId) => ({ messageId })));
  expect(recorded.map((record) => record.messageId).sort()).toEqual([ids[0], ids[2]].sort());
}

const message = (id: string): VerifiedMessage =>
  new VerifiedMessage(id, 'event', 'orders.created', 'orders', Date.now(), 'corr-1', undefined, {});

describe(InProcessEventStream.name, () => {
  it('delivers to every group and resolves once each has applied the event', async () => {
    const stream = new InProcessEventStream([1]);
    const applied: string[] = [];
    await stream.consume('orders.created', 'billing', () => {
      applied.push('billing');
      return Promise.resolve('done');
    });
    await stream.consume('orders.created', 'audit', () => {
      applied.push('audit');
      return Promise.resolve('done');
    });

    await stream.publish('orders.created', 'id-1', new Uint8Array([1]));

    expect(applied.sort()).toEqual(['audit', 'billing']);
  });

  it('redelivers a failing event until it succeeds, telling the consumer the attempt', async () => {
    const stream = new InProcessEventStream([1]);
    const attempts: number[] = [];
    await stream.consume('orders.created', 'billing', ({ attempt }) => {
      attempts.push(attempt);
      return Promise.resolve(attempt < 3 ? 'retry' : 'done');
    });

    await stream.publish('orders.created', 'id-1', new Uint8Array([1]));

    expect(attempts).toEqual([1, 2, 3]);
  });

  it(`stops after ${MAX_DELIVERIES} deliveries, the last one marked as such`, async () => {
    const stream = new InProcessEventStream([1]);
    const last: boolean[] = [];
    await stream.consume('orders.created', 'billing', ({ isLastAttempt }) => {
      last.push(isLastAttempt);
      return Promise.reject(new Error('handler keeps failing'));
    });

    await stream.publish('orders.created', 'id-1', new Uint8Array([1]));

    expect(last).toEqual([false, false, false, false, true]);
  });
});

describe('the outbox and the inbox on a real database', () => {
  let database: EmbeddedDatabase;
  let db: DataSource;
  let events: RecordingSecurityEvents;
  let sink: OutboxAuditSink;

  beforeAll(async () => {
    database = await openMessagingTables('durable');
    db = database.db;
    events = new RecordingSecurityEvents();
    sink = new OutboxAuditSink('billing', db, new Outbox('billing'));
  }, 60_000);

  afterAll(() => database?.close());

  it('applies a message once, however often it arrives, and records each repeat', async () => {
    const inbox = new Inbox('billing', db, events, sink);
    const id = '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e01';
    let effects = 0;
    const effect = (): Promise<void> => {
      effects += 1;
      return Promise.resolve();
    };

    expect(await inbox.once(message(id), effect)).toBe(true);
    expect(await inbox.once(message(id), effect)).toBe(false);
    expect(await inbox.once(message(id), effect)).toBe(false);

    expect(effects).toBe(1);
    expect(events.reasons).toEqual(['replayed', 'replayed']);
  });

  it('records no replay when the stream itself delivers an applied message again', async () => {
    const inbox = new Inbox('billing', db, events, sink);
    const id = '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e03';
    const before = events.recorded.length;
    let effects = 0;
    const effect = (): Promise<void> => {
      effects += 1;
      return Promise.resolve();
    };
    const delivered = (redelivery: boolean): Promise<boolean> =>
      RequestContext.run({ correlationId: 'c', redelivery }, () => inbox.once(message(id), effect));

    expect(await delivered(false)).toBe(true);
    // Delivered again by the stream (its frame retried, an acknowledgement lost): no replay.
    expect(await delivered(true)).toBe(false);
    expect(events.reasons.slice(before)).toEqual([]);
    // The same message sent anew, as a captured one would be, is a replay.
    expect(await delivered(false)).toBe(false);
    expect(effects).toBe(1);
    expect(events.reasons.slice(before)).toEqual(['replayed']);
  });

  it('forgets a message whose effect failed, so its redelivery is applied', async () => {
    const inbox = new Inbox('billing', db, events, sink);
    const id = '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e02';

    await expect(inbox.once(message(id), () => Promise.reject(new Error('boom')))).rejects.toThrow(
      'boom',
    );
    expect(await inbox.once(message(id), () => Promise.resolve())).toBe(true);
  });

  it('applies messages that arrive together in one transaction, each in its own context', async () => {
    const inbox = new Inbox('billing', db, events, sink);
    const ids = [randomUUID(), randomUUID(), randomUUID()];
    const seen: Array<{ id: string; correlationId?: string; transaction: unknown }> = [];

    const applied = await Promise.all(
      [...ids, ids[0]].map((id, n) =>
        RequestContext.run({ correlationId: `corr-${n}` }, () =>
          inbox.once(message(id), (tx) => {
            seen.push({ id, correlationId: RequestContext.correlationId(), transaction: tx });
            return Promise.resolve();
          }),
        ),
      ),
    );

    expect(applied).toEqual([true, true, true, false]);
    expect(seen.map(({ id, correlationId }) => ({ id, correlationId }))).toEqual(
      ids.map((id, n) => ({ id, correlationId: `corr-${n}` })),
    );
    expect(new Set(seen.map(({ transaction }) => transaction)).size).toBe(1);
    expect(events.reasons.slice(-1)).toEqual(['replayed']);
  });

  it('applies the others of a batch when one effect fails, and fails only that one', async () => {
    const inbox = new Inbox('billing', db, events, sink);
    const [good, bad, other] = [randomUUID(), randomUUID(), randomUUID()];
    const applied: string[] = [];
    const apply = (id: string) => () => {
      if (id === bad) return Promise.reject(new Error('this one fails'));
      applied.push(id);
      return Promise.resolve();
    };

    const outcomes = await Promise.allSettled(
      [good, bad, other].map((id) => inbox.once(message(id), apply(id))),
    );

    await expectOnlyTheMiddleOneFailed(db, outcomes, [good, bad, other]);
    expect(await inbox.once(message(bad), () => Promise.resolve())).toBe(true);
  });

  it('keeps an event only if its transaction commits', async () => {
    const outbox = new Outbox('billing');
    const paid = {
      invoiceId: '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e03',
      orderId: '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e04',
      customerId: '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e05',
      paidAt: new Date().toISOString(),
    };

    await db.transaction((tx) => outbox.enqueue(tx, 'billing.invoice.paid', paid));
    await expect(
      db.transaction(async (tx) => {
        await outbox.enqueue(tx, 'billing.invoice.paid', paid);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');

    expect(await db.getRepository(OutboxRecord).count()).toBe(1);
  });

  const paidEvent = () => ({
    invoiceId: randomUUID(),
    orderId: randomUUID(),
    customerId: randomUUID(),
    paidAt: new Date().toISOString(),
  });

  const stored = async (invoiceIds: string[]): Promise<string[]> => {
    const rows = await db.getRepository(OutboxRecord).find();
    return rows
      .map((row) => (row.payload as { invoiceId: string }).invoiceId)
      .filter((id) => invoiceIds.includes(id))
      .sort();
  };

  it('writes all the events of a transaction with one insert, just before it commits', async () => {
    const outbox = new Outbox('billing');
    const events = [paidEvent(), paidEvent(), paidEvent()];
    const runner = db.createQueryRunner();
    const query = jest.spyOn(runner, 'query');
    try {
      await runner.startTransaction();
      for (const event of events)
        await outbox.enqueue(runner.manager, 'billing.invoice.paid', event);
      const insertsBeforeCommit = query.mock.calls.filter(([sql]) => /INSERT/i.test(sql)).length;
      await runner.commitTransaction();

      expect(insertsBeforeCommit).toBe(0);
      expect(query.mock.calls.filter(([sql]) => /INSERT/i.test(sql))).toHaveLength(1);
    } finally {
      await runner.release();
    }
    expect(await stored(events.map((e) => e.invoiceId))).toEqual(
      events.map((e) => e.invoiceId).sort(),
    );
  });

  it('drops the events of a savepoint rolled back, and keeps those around it', async () => {
    const outbox = new Outbox('billing');
    const [before, inside, after] = [paidEvent(), paidEvent(), paidEvent()];
    const runner = db.createQueryRunner();
    try {
      await runner.startTransaction();
      await outbox.enqueue(runner.manager, 'billing.invoice.paid', before);
      await runner.startTransaction();
      await outbox.enqueue(runner.manager, 'billing.invoice.paid', inside);
      await runner.rollbackTransaction();
      await outbox.enqueue(runner.manager, 'billing.invoice.paid', after);
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }

    const ids = [before, inside, after].map((e) => e.invoiceId);
    expect(await stored(ids)).toEqual([before.invoiceId, after.invoiceId].sort());
  });

  it('keeps the events of a transaction when a savepoint inside a rolled-back one was released', async () => {
    const outbox = new Outbox('billing');
    const [outer, inner] = [paidEvent(), paidEvent()];
    const runner = db.createQueryRunner();
    try {
      await runner.startTransaction();
      await outbox.enqueue(runner.manager, 'billing.invoice.paid', outer);
      await runner.startTransaction();
      await runner.startTransaction();
      await outbox.enqueue(runner.manager, 'billing.invoice.paid', inner);
      await runner.commitTransaction();
      await runner.rollbackTransaction();
      await runner.commitTransaction();
    } finally {
      await runner.release();
    }

    expect(await stored([outer.invoiceId, inner.invoiceId])).toEqual([outer.invoiceId]);
  });

  it('refuses to record an event this service may not publish', async () => {
    const outbox = new Outbox('billing');
    await expect(
      db.transaction((tx) =>
        outbox.enqueue(tx, 'orders.created', {
          orderId: '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e06',
          customerId: '3f5d1a0e-8c1b-4b7e-9a61-2f0b7c9d1e07',
          totalCents: 100,
          currency: 'EUR',
        }),
      ),
    ).rejects.toThrow('billing may not publish orders.created');
  });
});

describe('the inbox applying messages in one statement, on a real database', () => {
  let database: EmbeddedDatabase;
  let db: DataSource;
  let events: RecordingSecurityEvents;
  let inbox: Inbox;
  const outbox = new Outbox('billing');

  /**
   * Marks a key as done: the effect takes place for a key not done before. Each message whose
   * effect takes place also publishes an event and audits what it did.
   */
  const marking: InboxStatementEffect<string> = {
    clauses: (first) => `done AS (
         INSERT INTO billing.done_keys (key)
         SELECT i.key FROM unnest($${first}::uuid[], $${first + 1}::varchar[]) AS i(message_id, key)
          WHERE i.message_id IN (SELECT message_id FROM recorded)
         ON CONFLICT DO NOTHING RETURNING key),
       effect AS (
         SELECT i.message_id
           FROM unnest($${first}::uuid[], $${first + 1}::varchar[]) AS i(message_id, key)
          WHERE i.key IN (SELECT key FROM done))`,
    parameters: (items) => [items.map((i) => i.messageId), items.map((i) => i.item)],
    rowsOf: (key) => [
      outbox.row('billing.invoice.paid', {
        invoiceId: randomUUID(),
        orderId: randomUUID(),
        customerId: randomUUID(),
        paidAt: new Date().toISOString(),
      }),
      ...new OutboxAuditSink('billing', db, outbox).rowsOf([
        events.draft({
          type: 'invoice.opened',
          outcome: 'allowed',
          service: 'billing',
          resourceType: 'invoice',
          resourceId: key,
        }),
      ]),
    ],
  };

  const apply = (id: string, key: string, correlationId = 'corr') =>
    RequestContext.run({ correlationId }, () => inbox.onceIn(message(id), marking, key));

  interface Row {
    id: string;
    type: string;
    payload: { records?: AuditRecord[] };
    correlation_id: string;
    claimed_until: Date | null;
  }
  const outboxRows = (): Promise<Row[]> =>
    db.query(
      `SELECT id, type, payload, correlation_id, claimed_until
         FROM billing.outbox ORDER BY created_at`,
    );

  beforeAll(async () => {
    database = await openMessagingTables('inbox-statement');
    db = database.db;
    await db.query(`CREATE TABLE billing.done_keys (key varchar(8) PRIMARY KEY)`);
    events = new RecordingSecurityEvents();
    inbox = new Inbox('billing', db, events, new OutboxAuditSink('billing', db, outbox));
  }, 60_000);

  beforeEach(async () => {
    await db.query('DELETE FROM billing.outbox');
    events.recorded.splice(0);
    events.announced.splice(0);
  });

  afterAll(() => database?.close());

  it('applies the new messages of a batch and writes their rows in one statement', async () => {
    const [earlier, fresh, again] = [randomUUID(), randomUUID(), randomUUID()];
    expect(await apply(earlier, 'k-1')).toBe(true);
    await db.query('DELETE FROM billing.outbox');
    events.announced.splice(0);
    const queries = jest.spyOn(db, 'query');
    const transactions = jest.spyOn(db, 'transaction');

    const applied = await Promise.all([
      apply(fresh, 'k-2', 'corr-fresh'),
      apply(earlier, 'k-9'),
      // New to the inbox, but its key is done: applied, without an effect.
      apply(again, 'k-1', 'corr-again'),
      apply(fresh, 'k-2'),
    ]);
    const statements = queries.mock.calls.length;
    const opened = transactions.mock.calls.length;
    queries.mockRestore();
    transactions.mockRestore();

    expect(applied).toEqual([true, false, true, false]);
    expect(statements).toBe(1);
    expect(opened).toBe(0);
    expect(events.reasons).toEqual(['replayed', 'replayed']);
    expect(await db.query(`SELECT key FROM billing.done_keys ORDER BY key`)).toEqual([
      { key: 'k-1' },
      { key: 'k-2' },
    ]);

    // The event of the one effect that took place, then every audit record in one row.
    const rows = await outboxRows();
    expect(rows.map((row) => row.type)).toEqual(['billing.invoice.paid', 'billing.audit.recorded']);
    expect(rows[0].correlation_id).toBe('corr-fresh');
    const records = rows[1].payload.records ?? [];
    expect(records.map((r) => [r.type, r.correlationId, r.resource?.id])).toEqual([
      ['invoice.opened', 'corr-fresh', 'k-2'],
      ['message.handled', 'corr-fresh', undefined],
      ['message.handled', 'corr-again', undefined],
    ]);
    expect(records.map((r) => r.details?.messageId)).toEqual([undefined, fresh, again]);
    expect(rows[1].id).toBe(records[0].id);
    expect(rows[1].correlation_id).toBe('corr-fresh');
    // Written without a relay in this process: no lease, any relay claims them.
    expect(rows.map((row) => row.claimed_until)).toEqual([null, null]);
    expect(events.announced.map((r) => r.id)).toEqual(records.map((r) => r.id));
  });

  it('hands the rows it wrote to the relay, leased to it', async () => {
    const handed: StoredOutboxRow[] = [];
    const stop = onOutboxWritten(db, 'billing', (rows) => handed.push(...(rows ?? [])));
    try {
      expect(await apply(randomUUID(), 'k-3')).toBe(true);
    } finally {
      stop();
    }

    const rows = await outboxRows();
    expect(handed.map(({ id, type, payload }) => ({ id, type, payload }))).toEqual(
      rows.map(({ id, type, payload }) => ({ id, type, payload })),
    );
    expect(handed.map((row) => [row.service, row.lease])).toEqual([
      ['billing', OUTBOX_LEASE_SECONDS],
      ['billing', OUTBOX_LEASE_SECONDS],
    ]);
    expect(rows.every((row) => row.claimed_until !== null)).toBe(true);
  });

  it('applies the others when the statement fails for one, and fails only that one', async () => {
    const [good, bad, other] = [randomUUID(), randomUUID(), randomUUID()];

    const outcomes = await Promise.allSettled([
      apply(good, 'k-4'),
      apply(bad, 'too long a key'),
      apply(other, 'k-5'),
    ]);

    await expectOnlyTheMiddleOneFailed(db, outcomes, [good, bad, other]);
    // Nothing of the failed message was kept: delivered again, it is applied.
    expect(events.announced.filter((r) => r.details?.messageId === bad)).toEqual([]);
    expect(await apply(bad, 'k-6')).toBe(true);
  });

  it('keeps a batch applied when the relay fails to take its rows after the commit', async () => {
    const stop = onOutboxWritten(db, 'billing', () => {
      throw new Error('the relay is gone');
    });
    try {
      expect(await Promise.all([apply(randomUUID(), 'k-9'), apply(randomUUID(), 'k-10')])).toEqual([
        true,
        true,
      ]);
    } finally {
      stop();
    }
    expect(events.reasons).toEqual([]);
  });

  it('refuses an effect that does not read which messages are new', async () => {
    const careless: InboxStatementEffect<string> = {
      ...marking,
      clauses: (first) => `effect AS (
           SELECT i.message_id FROM unnest($${first}::uuid[], $${first + 1}::varchar[])
             AS i(message_id, key))`,
    };
    const id = randomUUID();

    await expect(
      RequestContext.run({ correlationId: 'c' }, () => inbox.onceIn(message(id), careless, 'k-8')),
    ).rejects.toThrow('must read `recorded`');
    expect(await db.getRepository(InboxRecord).findBy({ messageId: id })).toEqual([]);
  });

  it('applies messages of both kinds that arrive together, each kind its own way', async () => {
    const [viaStatement, viaTransaction] = [randomUUID(), randomUUID()];
    let ran = 0;

    const applied = await Promise.all([
      apply(viaStatement, 'k-7'),
      inbox.once(message(viaTransaction), () => {
        ran += 1;
        return Promise.resolve();
      }),
    ]);

    expect(applied).toEqual([true, true]);
    expect(ran).toBe(1);
    expect(events.reasons).toEqual([]);
  });
});
