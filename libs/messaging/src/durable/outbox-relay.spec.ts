import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import { type AuditRecord, buildAuditRecord } from '@portcullis/audit';
import {
  AUDIT_BATCH_LIMITS,
  AuditRecordPayload,
  AuditRecordedEvent,
  auditBatchMessageId,
} from '@portcullis/contracts';
import { RequestContext } from '@portcullis/core';

import { EnvelopeFixture } from '../../../../jest/signed-envelopes';
import { type EmbeddedDatabase, openEmbeddedDatabase } from '../../../../jest/embedded-database';
import type { EventStream } from './event-stream';
import { messagingTablesMigration } from './messaging-tables.migration';
import { outboxTraceContextMigration } from './outbox-trace-context.migration';
import {
  Outbox,
  auditBatches,
  onOutboxWritten,
  outboxInsert,
  outboxRowsJson,
  outboxWritten,
  packAuditRows,
  storedOutboxRows,
} from './outbox';
import { outboxPublishedRowsMigration } from './outbox-published-rows.migration';
import { OutboxAuditSink } from './outbox-audit-sink';
import { OutboxRecord } from './outbox-record.entity';
import { OutboxRelay } from './outbox-relay';

interface Published {
  readonly type: string;
  readonly id: string;
  readonly data: Uint8Array;
}

/** A stream that keeps what is published, refusing it while `down` is set. */
class CapturingStream implements EventStream {
  readonly published: Published[] = [];
  readonly attempted: string[] = [];
  down = false;

  publish(type: string, id: string, data: Uint8Array): Promise<void> {
    this.attempted.push(id);
    if (this.down) return Promise.reject(new Error('stream unavailable'));
    this.published.push({ type, id, data });
    return Promise.resolve();
  }
  consume(): Promise<void> {
    return Promise.resolve();
  }
  deadLetter(): Promise<void> {
    return Promise.resolve();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const record = (n: number, reason?: string): AuditRecord =>
  buildAuditRecord(
    {
      type: 'http.request',
      outcome: 'allowed',
      reason,
      details: { method: 'POST', route: '/orders', n },
    },
    'orders',
    { correlationId: `corr-${n}` },
  );

const row = (type: string, bytes: number) => ({ type, payload: { text: 'x'.repeat(bytes) } });

describe(auditBatches.name, () => {
  it(`puts at most ${AUDIT_BATCH_LIMITS.records} records in a batch, in order`, () => {
    const rows = Array.from({ length: 1_201 }, (_, n) => ({ type: 'orders.audit.recorded', n }));

    const batches = auditBatches(rows.map((r) => ({ ...r, payload: { n: r.n } })));

    expect(batches.map((batch) => batch.length)).toEqual([500, 500, 201]);
    expect(batches.flat().map((r) => r.n)).toEqual(rows.map((r) => r.n));
  });

  it('starts a new batch before the records would pass the byte bound', () => {
    const rows = Array.from({ length: 5 }, () => row('orders.audit.recorded', 100_000));

    expect(auditBatches(rows).map((batch) => batch.length)).toEqual([2, 2, 1]);
  });

  it('counts each row as the UTF-8 bytes of its records as JSON', () => {
    // Two rows whose records' JSON together is exactly the bound; multi-byte text included.
    const packed = (text: string) => ({
      type: 'orders.audit.recorded',
      payload: { records: [{ text }, { text: 'é' }] },
    });
    const size = (text: string) => Buffer.byteLength(JSON.stringify(packed(text).payload.records));
    const first = 'ü'.repeat(60_000);
    const fill = AUDIT_BATCH_LIMITS.bytes - size(first) - size('');
    const exact = [packed(first), packed('a'.repeat(fill))];
    const over = [packed(first), packed('a'.repeat(fill + 1))];

    expect(auditBatches(exact).map((batch) => batch.length)).toEqual([2]);
    expect(auditBatches(over).map((batch) => batch.length)).toEqual([1, 1]);
    // Measured again (the sizes are remembered per record), the answer is the same.
    expect(auditBatches(exact).map((batch) => batch.length)).toEqual([2]);
  });

  it('still sends a record larger than the bound, alone', () => {
    const rows = [
      row('orders.audit.recorded', 10),
      row('orders.audit.recorded', 300_000),
      row('orders.audit.recorded', 10),
    ];

    expect(auditBatches(rows).map((batch) => batch.length)).toEqual([1, 1, 1]);
  });

  it('never mixes two types in one batch', () => {
    const rows = [row('orders.audit.recorded', 1), row('auth.audit.recorded', 1)];

    expect(auditBatches(rows).map((batch) => batch.map((r) => r.type))).toEqual([
      ['orders.audit.recorded'],
      ['auth.audit.recorded'],
    ]);
  });
});

describe(packAuditRows.name, () => {
  const outbox = new Outbox('orders');
  const auditRows = (records: readonly AuditRecord[]) =>
    outbox.rows(
      'orders.audit.recorded',
      records.map((r) => ({ id: r.id, payload: r as AuditRecordPayload, correlationId: 'c' })),
    );
  const event = () =>
    outbox.row('orders.created', {
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 1,
      currency: 'EUR',
    });

  it('puts the records of one type in one row, named by the first, after the other rows', () => {
    const records = [record(1), record(2), record(3)];
    const first = event();
    const rows = [
      first,
      ...auditRows(records.slice(0, 2)),
      event(),
      ...auditRows(records.slice(2)),
    ];

    const second = rows[3];

    const packed = packAuditRows(rows);

    expect(packed.map((row) => row.type)).toEqual([
      'orders.created',
      'orders.created',
      'orders.audit.recorded',
    ]);
    expect(packed[0]).toBe(first);
    expect(packed[1]).toBe(second);
    expect(packed[2].id).toBe(records[0].id);
    expect(packed[2].payload).toEqual({ records: records.map((r) => ({ ...r })) });
  });

  it(`keeps at most ${AUDIT_BATCH_LIMITS.records} records in a row`, () => {
    const records = Array.from({ length: 1_001 }, (_, n) => record(n));

    const packed = packAuditRows(auditRows(records));

    expect(packed.map((row) => (row.payload as { records: unknown[] }).records.length)).toEqual([
      500, 500, 1,
    ]);
    expect(
      packed.flatMap((row) => (row.payload as { records: AuditRecord[] }).records.map((r) => r.id)),
    ).toEqual(records.map((r) => r.id));
  });

  it('starts a new row before the byte bound, and gives a record above it a row alone', () => {
    const big = (n: number, bytes: number) =>
      ({ ...record(n), details: { text: 'x'.repeat(bytes) } }) as AuditRecord;
    const records = [big(1, 100_000), big(2, 100_000), big(3, 100_000), big(4, 300_000), record(5)];

    const packed = packAuditRows(auditRows(records));

    expect(packed.map((row) => (row.payload as { records: unknown[] }).records.length)).toEqual([
      2, 1, 1, 1,
    ]);
  });
});

describe(`${OutboxRelay.name} on a real database`, () => {
  let database: EmbeddedDatabase;
  let db: DataSource;
  let fixture: EnvelopeFixture;

  beforeAll(async () => {
    fixture = EnvelopeFixture.create();
    database = await openEmbeddedDatabase('relay', {
      service: 'orders',
      entities: [OutboxRecord],
      migrations: [
        messagingTablesMigration('orders'),
        outboxTraceContextMigration('orders'),
        outboxPublishedRowsMigration('orders'),
      ],
    });
    db = database.db;
  }, 60_000);

  afterAll(async () => {
    await database?.close();
    fixture?.remove();
  });

  beforeEach(async () => {
    await db.query('DELETE FROM orders.outbox');
  });

  /** Relays everything pending through `stream`, then stops the relay. */
  async function relay(stream: EventStream): Promise<ReturnType<EnvelopeFixture['codec']>> {
    const codec = fixture.codec();
    const relay = new OutboxRelay('orders', db, codec.codec, () => Promise.resolve(stream));
    relay.nudge();
    await relay.stop();
    return codec;
  }

  const pending = async (): Promise<number> =>
    (
      await db.query<Array<{ n: number }>>(
        'SELECT count(*)::int AS n FROM orders.outbox WHERE published_at IS NULL',
      )
    )[0].n;

  it('sends the audit records found together as one signed message, and other events alone', async () => {
    const sink = new OutboxAuditSink('orders', db, new Outbox('orders'));
    const records = Array.from({ length: 7 }, (_, n) => record(n));
    const order = {
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 100,
      currency: 'EUR',
    };
    await db.transaction(async (tx) => {
      await new Outbox('orders').enqueue(tx, 'orders.created', order);
      await sink.writeIn(tx, records.slice(0, 3));
    });
    await sink.write(records.slice(3));
    const stream = new CapturingStream();

    const { codec } = await relay(stream);

    expect(stream.published.map((message) => message.type).sort()).toEqual([
      'orders.audit.recorded',
      'orders.created',
    ]);
    const batch = stream.published.find((message) => message.type === 'orders.audit.recorded')!;
    const opened = codec.open(batch.data, {
      subject: 'orders.audit.recorded',
      kinds: ['event'],
      redeliverable: true,
    });
    expect(opened.payload).toBeInstanceOf(AuditRecordedEvent);
    const sent = (opened.payload as AuditRecordedEvent).records;
    // In the order of their transactions (records of one transaction share its time).
    const byId = (a: { id: string }, b: { id: string }): number => a.id.localeCompare(b.id);
    const plain = (list: readonly object[]): unknown => JSON.parse(JSON.stringify(list));
    expect(plain([...sent.slice(0, 3)].sort(byId))).toEqual(plain(records.slice(0, 3).sort(byId)));
    expect(plain([...sent.slice(3)].sort(byId))).toEqual(plain(records.slice(3).sort(byId)));
    expect(opened.id).toBe(auditBatchMessageId(sent.map((r) => r.id)));
    expect(batch.id).toBe(opened.id);
    expect(await pending()).toBe(0);
  });

  it('stores the records one statement writes in one row, and reads rows of the earlier form too', async () => {
    const sink = new OutboxAuditSink('orders', db, new Outbox('orders'));
    const records = Array.from({ length: 6 }, (_, n) => record(n));
    // A row as it was stored before records were packed: the record itself as the payload.
    await db.query(
      `INSERT INTO orders.outbox (id, type, payload, correlation_id, created_at)
       VALUES ($1, 'orders.audit.recorded', $2, $3, now() - interval '1 second')`,
      [records[0].id, JSON.stringify(records[0]), records[0].correlationId],
    );
    await db.transaction(async (tx) => {
      await sink.writeIn(tx, records.slice(1, 3));
      await sink.writeIn(tx, records.slice(3, 4));
    });
    await sink.write(records.slice(4));
    const stored = await db.query<Array<{ id: string; n: number }>>(
      `SELECT id, jsonb_array_length(payload->'records') AS n FROM orders.outbox
        WHERE payload ? 'records' ORDER BY created_at`,
    );
    expect(stored).toEqual([
      { id: records[1].id, n: 3 },
      { id: records[4].id, n: 2 },
    ]);
    const stream = new CapturingStream();

    const { codec } = await relay(stream);

    expect(stream.published).toHaveLength(1);
    const opened = codec.open(stream.published[0].data, {
      subject: 'orders.audit.recorded',
      kinds: ['event'],
      redeliverable: true,
    });
    const sent = (opened.payload as AuditRecordedEvent).records;
    expect(sent.map((r) => r.id)).toEqual(records.map((r) => r.id));
    expect(opened.id).toBe(auditBatchMessageId(records.map((r) => r.id)));
    expect(await pending()).toBe(0);
  });

  it('relays rows a statement wrote itself with outboxInsert, as enqueue would have them', async () => {
    const outbox = new Outbox('orders');
    const order = {
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 4200,
      currency: 'EUR',
    };
    const actor = { id: order.customerId, roles: ['customer'], sessionId: randomUUID() };
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const rows = RequestContext.run(
      { correlationId: 'corr-statement', actor, traceparent, service: 'orders' },
      () => [outbox.row('orders.created', order)],
    );
    let told = 0;
    const stopListening = onOutboxWritten(db, 'orders', () => (told += 1));
    // Stored with no lease: the listener here is not a relay that will send them from memory.
    const stored = storedOutboxRows(db, 'orders', rows).map((row) => ({ ...row, lease: null }));
    await db.query(outboxInsert('orders', 1), [outboxRowsJson(stored)]);
    outboxWritten(db, stored);
    stopListening();
    outboxWritten(db, stored);
    const stream = new CapturingStream();

    const { codec } = await relay(stream);

    expect(told).toBe(1);
    expect(stream.published).toHaveLength(1);
    const opened = codec.open(stream.published[0].data, {
      subject: 'orders.created',
      kinds: ['event'],
      redeliverable: true,
    });
    expect(opened).toMatchObject({
      id: rows[0].id,
      correlationId: 'corr-statement',
      actor,
      traceparent,
      payload: order,
    });
    expect(await pending()).toBe(0);
  });

  it('leaves every record of a batch the stream refused to be relayed again, as the same message', async () => {
    const sink = new OutboxAuditSink('orders', db, new Outbox('orders'));
    await sink.write([record(1), record(2)]);
    const stream = new CapturingStream();
    stream.down = true;

    await relay(stream);
    // The two records written by one statement share one row.
    expect(await pending()).toBe(1);

    await db.query('UPDATE orders.outbox SET claimed_until = NULL');
    stream.down = false;
    await relay(stream);

    expect(await pending()).toBe(0);
    expect(stream.published).toHaveLength(1);
    expect(stream.attempted).toEqual([stream.published[0].id, stream.published[0].id]);
  });

  describe('while it runs', () => {
    const order = () => ({
      orderId: randomUUID(),
      customerId: randomUUID(),
      totalCents: 100,
      currency: 'EUR',
    });
    const rowsLeft = async (): Promise<number> =>
      (await db.query<Array<{ n: number }>>('SELECT count(*)::int AS n FROM orders.outbox'))[0].n;
    /** A relay of orders' outbox sending to `stream` (started by the test). */
    const relayOver = (stream: EventStream): OutboxRelay =>
      new OutboxRelay('orders', db, fixture.codec().codec, () => Promise.resolve(stream));
    /** The payload of an `orders.created` event the relay published, opened as a receiver would. */
    const orderCreatedPayload = (data: Uint8Array): unknown =>
      fixture.codec().codec.open(data, {
        subject: 'orders.created',
        kinds: ['event'],
        redeliverable: true,
      }).payload;
    const until = async (condition: () => boolean | Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 5_000;
      while (!(await condition())) {
        if (Date.now() > deadline) throw new Error('condition not met within 5 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    };

    it('sends the rows a commit wrote without claiming them, and deletes them once sent', async () => {
      const seen: Array<{ attempts: number; leased: boolean }> = [];
      const stream = new CapturingStream();
      const publish = stream.publish.bind(stream);
      stream.publish = async (type, id, data) => {
        // The row as the relay found it when it sent it.
        seen.push(
          ...(await db.query<Array<{ attempts: number; leased: boolean }>>(
            `SELECT attempts, claimed_until > now() + interval '20 seconds' AS leased
               FROM orders.outbox WHERE id = $1`,
            [id],
          )),
        );
        return publish(type, id, data);
      };
      const relay = relayOver(stream);
      relay.start();
      try {
        const sink = new OutboxAuditSink('orders', db, new Outbox('orders'));
        await db.transaction(async (tx) => {
          await new Outbox('orders').enqueue(tx, 'orders.created', order());
          await sink.writeIn(tx, [record(1)]);
        });
        await new Outbox('orders').enqueue(db.manager, 'orders.created', order());

        await until(async () => stream.published.length === 3 && (await rowsLeft()) === 0);
        // Nothing goes out a second time, from memory or from the table's poll.
        await new Promise((resolve) => setTimeout(resolve, 700));
      } finally {
        await relay.stop();
      }
      expect(stream.attempted).toHaveLength(3);
      expect(new Set(stream.attempted).size).toBe(3);
      // Both orders.created rows (their message ids are their row ids) were leased to this
      // relay when written and sent as they were: never claimed from the table.
      expect(seen).toEqual([
        { attempts: 0, leased: true },
        { attempts: 0, leased: true },
      ]);
    });

    it('leaves a row the stream refused to be claimed again after a short wait', async () => {
      const stream = new CapturingStream();
      stream.down = true;
      const relay = relayOver(stream);
      relay.start();
      const written = order();
      try {
        await db.transaction((tx) => new Outbox('orders').enqueue(tx, 'orders.created', written));
        await until(() => stream.attempted.length > 0);
        await until(
          async () =>
            (
              await db.query<Array<{ short: boolean }>>(
                `SELECT claimed_until < now() + interval '5 seconds' AS short FROM orders.outbox`,
              )
            )[0]?.short === true,
        );
        stream.down = false;
        // Claimed from the table by the poll once the short wait is over.
        await until(async () => stream.published.length === 1 && (await rowsLeft()) === 0);
      } finally {
        await relay.stop();
      }
      expect(orderCreatedPayload(stream.published[0].data)).toEqual(written);
    });

    it('sends nothing of a transaction that rolled back, and the next one at once', async () => {
      const stream = new CapturingStream();
      const relay = relayOver(stream);
      relay.start();
      const kept = order();
      try {
        await db
          .transaction(async (tx) => {
            await new Outbox('orders').enqueue(tx, 'orders.created', order());
            throw new Error('the change fails');
          })
          .catch(() => undefined);
        await db.transaction((tx) => new Outbox('orders').enqueue(tx, 'orders.created', kept));
        await until(async () => stream.published.length === 1 && (await rowsLeft()) === 0);
        await new Promise((resolve) => setTimeout(resolve, 700));
      } finally {
        await relay.stop();
      }
      expect(stream.published).toHaveLength(1);
      expect(orderCreatedPayload(stream.published[0].data)).toEqual(kept);
    });

    it('frees the rows it holds when it stops before sending them', async () => {
      const stream = new CapturingStream();
      const publish = stream.publish.bind(stream);
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      // The first batch stays out until released; the second row waits in memory meanwhile.
      let asked = 0;
      stream.publish = async (type, id, data) => {
        asked += 1;
        await released;
        return publish(type, id, data);
      };
      const relay = relayOver(stream);
      relay.start();
      await db.transaction((tx) => new Outbox('orders').enqueue(tx, 'orders.created', order()));
      await until(() => asked === 1);
      await db.transaction((tx) => new Outbox('orders').enqueue(tx, 'orders.created', order()));
      const stopped = relay.stop();
      release();
      await stopped;

      expect(stream.published).toHaveLength(1);
      const left = await db.query<Array<{ free: boolean }>>(
        'SELECT (claimed_until IS NULL OR claimed_until <= now()) AS free FROM orders.outbox',
      );
      expect(left).toEqual([{ free: true }]);
    });

    it('leaves what it has no room for to the table, where it is claimed at once', async () => {
      const stream = new CapturingStream();
      const relay = relayOver(stream);
      relay.start();
      const outbox = new Outbox('orders');
      try {
        // One statement with more rows than a relay keeps in memory.
        const rows = Array.from({ length: 1_001 }, () => outbox.row('orders.created', order()));
        const stored = storedOutboxRows(db, 'orders', rows);
        expect(stored[0].lease).toBe(30);
        await db.query(outboxInsert('orders', 1), [outboxRowsJson(stored)]);
        outboxWritten(db, stored);
        // Well within the 30 s lease the rows were written with.
        await until(async () => (await rowsLeft()) === 0);
      } finally {
        await relay.stop();
      }
      expect(new Set(stream.published.map((message) => message.id)).size).toBe(1_001);
    });

    it('puts the rows back for another try when it has no stream to send to', async () => {
      const relay = new OutboxRelay('orders', db, fixture.codec().codec, () =>
        Promise.reject(new Error('not connected')),
      );
      relay.start();
      try {
        await db.transaction((tx) => new Outbox('orders').enqueue(tx, 'orders.created', order()));
        // Leased for 30 s when written; freed for a retry within seconds once sending failed.
        await until(
          async () =>
            (
              await db.query<Array<{ short: boolean }>>(
                `SELECT claimed_until < now() + interval '5 seconds' AS short FROM orders.outbox`,
              )
            )[0]?.short === true,
        );
      } finally {
        await relay.stop();
      }
      expect(await rowsLeft()).toBe(1);
    });

    it('sends audit rows and claims free rows while commits keep coming', async () => {
      const stream = new CapturingStream();
      const publish = stream.publish.bind(stream);
      // A slow stream: commits pile up while each batch is out.
      stream.publish = async (type, id, data) => {
        await new Promise((resolve) => setTimeout(resolve, 20));
        return publish(type, id, data);
      };
      const relay = relayOver(stream);
      const outbox = new Outbox('orders');
      const audited = record(1);
      // Written as if by a process with no relay: free for any relay to claim.
      const free = storedOutboxRows(db, 'orders', [outbox.row('orders.created', order())]);
      let duringLoad: string[];
      relay.start();
      try {
        const end = Date.now() + 2_000;
        let commits = 0;
        while (Date.now() < end) {
          await db.transaction((tx) => outbox.enqueue(tx, 'orders.created', order()));
          commits += 1;
          // A commit every few milliseconds, leaving the embedded database's one connection
          // to the relay in between.
          await new Promise((resolve) => setTimeout(resolve, 3));
          if (commits === 5) {
            await new OutboxAuditSink('orders', db, outbox).write([audited]);
            await db.query(outboxInsert('orders', 1), [outboxRowsJson(free)]);
          }
        }
        duringLoad = stream.published.map((message) => message.id);
      } finally {
        await relay.stop();
      }
      expect(duringLoad).toContain(free[0].id);
      expect(duringLoad).toContain(auditBatchMessageId([audited.id]));
    });

    it('lets any relay claim a row leased to another once that lease has run out', async () => {
      const outbox = new Outbox('orders');
      const leased = storedOutboxRows(db, 'orders', [outbox.row('orders.created', order())]).map(
        (row) => ({ ...row, lease: 30 }),
      );
      await db.query(outboxInsert('orders', 1), [outboxRowsJson(leased)]);
      const stream = new CapturingStream();

      await relay(stream);
      expect(stream.attempted).toEqual([]);

      await db.query(`UPDATE orders.outbox SET claimed_until = now() - interval '1 second'`);
      await relay(stream);

      expect(stream.published.map((message) => message.id)).toEqual([leased[0].id]);
      expect(await rowsLeft()).toBe(0);
    });
  });
});

describe('an audit message opened by its receiver', () => {
  let fixture: EnvelopeFixture;

  beforeAll(() => {
    fixture = EnvelopeFixture.create();
  });

  afterAll(() => {
    fixture.remove();
  });

  it('in the earlier form, one record as the payload, is still accepted', () => {
    const { codec } = fixture.codec();
    const single = record(1);
    const wire = codec.seal('orders', 'event', 'orders.audit.recorded', single, {
      id: single.id,
      correlationId: single.correlationId,
    });

    const opened = codec.open(wire, { subject: 'orders.audit.recorded', kinds: ['event'] });

    expect(opened.payload).toBeInstanceOf(AuditRecordPayload);
    expect((opened.payload as AuditRecordPayload).id).toBe(single.id);
  });

  it.each([
    ['no record', { records: [] }],
    ['too many records', { records: Array.from({ length: 501 }, (_, n) => record(n)) }],
    ['a record that fails validation', { records: [{ ...record(1), outcome: 'maybe' }] }],
    ['a record and a batch at once', { ...record(1), records: [record(2)] }],
  ])('is refused with %s', (_name, payload) => {
    const { codec, events } = fixture.codec();
    const wire = codec.seal('orders', 'event', 'orders.audit.recorded', payload, {
      correlationId: 'c-1',
    });

    expect(() =>
      codec.open(wire, { subject: 'orders.audit.recorded', kinds: ['event'] }),
    ).toThrow();
    expect(events.recorded).toEqual([expect.objectContaining({ reason: 'invalid_payload' })]);
  });
});
