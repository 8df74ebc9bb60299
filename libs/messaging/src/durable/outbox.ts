import { randomUUID } from 'node:crypto';
import type {
  DataSource,
  EntityManager,
  EntitySubscriberInterface,
  QueryRunner,
  TransactionCommitEvent,
  TransactionRollbackEvent,
} from 'typeorm';

import {
  AUDIT_BATCH_LIMITS,
  type AuditEventType,
  type AuditRecordPayload,
  type EventType,
  type PayloadOf,
  isAuditEventType,
  maySend,
} from '@portcullis/contracts';
import { type Actor, RequestContext, type ServiceName, preparedStatement } from '@portcullis/core';

import { sendableTraceparent } from '../trace-context';
import type { OutboxRecord } from './outbox-record.entity';

/** Marks a transaction that wrote to the outbox, so its commit wakes the relay. */
export const OUTBOX_WRITTEN = 'portcullis.outboxWritten';

/** Rows a transaction enqueued and has not written yet, kept on its query runner. */
const OUTBOX_PENDING = 'portcullis.outboxPending';

/**
 * What one outbox row holds: the event's payload, or for the audit types one record (the
 * relay sends the records it finds together as one message).
 */
export type RowPayloadOf<T extends EventType> = T extends AuditEventType
  ? AuditRecordPayload
  : PayloadOf<T>;

/** One event of a batch written with {@link Outbox.enqueueAll}, with its own id and context. */
export interface OutboxItem<T extends EventType> {
  readonly id: string;
  readonly payload: RowPayloadOf<T>;
  readonly correlationId: string;
  readonly actor?: Actor;
}

/** The values of one outbox row, as {@link Outbox.row} builds them. */
export type OutboxRow = Pick<
  OutboxRecord,
  | 'id'
  | 'type'
  | 'payload'
  | 'actor'
  | 'correlationId'
  | 'traceparent'
  | 'claimedUntil'
  | 'publishedAt'
  | 'attempts'
>;

/** A row waiting for its transaction's commit, and the savepoint depth that enqueued it. */
interface PendingRow {
  readonly depth: number;
  readonly service: ServiceName;
  readonly row: OutboxRow;
}

/**
 * Records this service's events in the same transaction as the change they report. The
 * relay publishes them after commit; if the transaction rolls back, the event never existed.
 *
 * Inside a transaction, the rows are kept until it commits and then written, all of them,
 * with one multi-row insert just before the COMMIT (a change that records an event and its
 * audit records costs one statement, not one per row); a failed insert fails the commit. A
 * savepoint rolled back drops the rows enqueued inside it. Outside a transaction the rows are
 * inserted at once, with one statement, and the relay is woken.
 */
export class Outbox {
  constructor(readonly service: ServiceName) {}

  enqueue<T extends EventType>(tx: EntityManager, type: T, payload: PayloadOf<T>): Promise<void> {
    return write(tx, this.service, [this.row(type, payload)]);
  }

  /** Records several events of one type, each with its own id. */
  enqueueAll<T extends EventType>(
    tx: EntityManager,
    type: T,
    items: ReadonlyArray<OutboxItem<T>>,
  ): Promise<void> {
    const rows = this.rows(type, items);
    return rows.length === 0 ? Promise.resolve() : write(tx, this.service, rows);
  }

  /**
   * The row {@link enqueue} writes, in the current request's context, for a change that writes
   * it itself in one statement with {@link outboxInsert} (then {@link outboxWritten}).
   */
  row<T extends EventType>(type: T, payload: PayloadOf<T>): OutboxRow {
    this.mustPublish(type);
    const context = RequestContext.current();
    return {
      id: randomUUID(),
      type,
      payload: { ...payload },
      actor: context?.actor ?? null,
      correlationId: context?.correlationId ?? randomUUID(),
      traceparent: sendableTraceparent(context?.traceparent) ?? null,
      claimedUntil: null,
      publishedAt: null,
      attempts: 0,
    };
  }

  /** The rows {@link enqueueAll} writes. */
  rows<T extends EventType>(type: T, items: ReadonlyArray<OutboxItem<T>>): OutboxRow[] {
    this.mustPublish(type);
    return items.map((item) => ({
      id: item.id,
      type,
      payload: { ...item.payload },
      actor: item.actor ?? null,
      correlationId: item.correlationId,
      traceparent: null,
      claimedUntil: null,
      publishedAt: null,
      attempts: 0,
    }));
  }

  private mustPublish(type: EventType): void {
    if (!maySend(type, this.service, 'event')) {
      throw new Error(`${this.service} may not publish ${type}`);
    }
  }
}

/**
 * An INSERT of outbox rows into `service`'s outbox, for a WITH clause or a statement of its
 * own, reading the rows from the JSON in parameter `$<parameter>` ({@link outboxRowsJson}).
 * A change and its events then take one statement, atomic without a transaction around it.
 */
export function outboxInsert(service: ServiceName, parameter: number): string {
  return preparedStatement(`INSERT INTO "${service}".outbox (id, type, payload, actor, correlation_id, traceparent)
     SELECT r.id, r.type, r.payload, r.actor, r.correlation_id, r.traceparent
       FROM jsonb_to_recordset($${parameter}::jsonb) AS r(
         id uuid, type varchar, payload jsonb, actor jsonb, correlation_id varchar,
         traceparent varchar)`);
}

/**
 * The parameter {@link outboxInsert} reads: the rows as they are stored, the audit records
 * among them packed by {@link packAuditRows}.
 */
export function outboxRowsJson(rows: readonly OutboxRow[]): string {
  return JSON.stringify(
    packAuditRows(rows).map((row) => ({
      id: row.id,
      type: row.type,
      payload: row.payload,
      actor: row.actor,
      correlation_id: row.correlationId,
      traceparent: row.traceparent,
    })),
  );
}

/** What a stored audit row holds: one record (as rows were first written), or several. */
export function auditRecordsOf(payload: unknown): unknown[] {
  const records = (payload as { records?: unknown } | null)?.records;
  return Array.isArray(records) ? records : [payload];
}

/**
 * The audit records among `rows` (one per row, as {@link Outbox.rows} makes them) stored
 * together: the records of one type that one statement writes share a row, with payload
 * `{ records: [...] }`, cut as {@link auditBatches} cuts them (a record that alone passes the
 * byte bound gets a row of its own). The row takes its first record's id. Every row stored
 * costs an insert and two updates (claimed, published), so a transaction that audits ten
 * things now writes one row where it wrote ten. Other rows come first, as they are.
 */
export function packAuditRows(rows: readonly OutboxRow[]): OutboxRow[] {
  const audit = rows.filter((row) => isAuditEventType(row.type));
  if (audit.length === 0) return [...rows];
  return [
    ...rows.filter((row) => !isAuditEventType(row.type)),
    ...auditBatches(audit).map((batch) => ({
      ...batch[0],
      payload: { records: batch.flatMap((row) => auditRecordsOf(row.payload)) },
    })),
  ];
}

/**
 * Audit rows cut into batches of one type each, in order, whose records stay within
 * {@link AUDIT_BATCH_LIMITS}. A row is never split (rows are packed within the same limits);
 * a row that alone exceeds the byte bound still travels, on its own. The relay sends a batch
 * as one message.
 */
export function auditBatches<T extends { type: string; payload: unknown }>(
  rows: readonly T[],
): T[][] {
  const batches: T[][] = [];
  const open = new Map<string, { rows: T[]; records: number; bytes: number }>();
  for (const row of rows) {
    const records = auditRecordsOf(row.payload);
    const bytes = Buffer.byteLength(JSON.stringify(records));
    let batch = open.get(row.type);
    if (
      batch &&
      (batch.records + records.length > AUDIT_BATCH_LIMITS.records ||
        batch.bytes + bytes > AUDIT_BATCH_LIMITS.bytes)
    ) {
      batch = undefined;
    }
    if (!batch) {
      batch = { rows: [], records: 0, bytes: 0 };
      open.set(row.type, batch);
      batches.push(batch.rows);
    }
    batch.rows.push(row);
    batch.records += records.length;
    batch.bytes += bytes;
  }
  return batches;
}

/** Listeners told when rows were written outside a transaction, by data source. */
const written = new WeakMap<DataSource, Set<() => void>>();

/** Calls `listener` (the relay) whenever {@link outboxWritten} is called for `db`. */
export function onOutboxWritten(db: DataSource, listener: () => void): () => void {
  const listeners = written.get(db) ?? new Set();
  written.set(db, listeners);
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Tells `db`'s relay that a statement of its own wrote outbox rows, so it relays them now. */
export function outboxWritten(db: DataSource): void {
  for (const listener of written.get(db) ?? []) listener();
}

async function write(tx: EntityManager, service: ServiceName, rows: OutboxRow[]): Promise<void> {
  const runner = tx.queryRunner;
  if (!runner?.isTransactionActive) {
    // One statement, committed on its own: the relay can take the rows now.
    await insertRows(tx, service, rows);
    outboxWritten(tx.connection);
    return;
  }
  watch(tx.connection);
  const depth = depthOf(runner);
  const pending = pendingOf(runner);
  for (const row of rows) pending.push({ depth, service, row });
  runner.data = { ...runner.data, [OUTBOX_PENDING]: pending, [OUTBOX_WRITTEN]: true };
}

/**
 * One statement for all the rows, built here rather than by TypeORM's insert builder, which
 * costs far more per row (about 0.1 ms of CPU for a transaction's few rows under load).
 */
async function insertRows(
  tx: EntityManager,
  service: ServiceName,
  rows: readonly OutboxRow[],
): Promise<void> {
  await tx.query(outboxInsert(service, 1), [outboxRowsJson(rows)]);
}

function pendingOf(runner: QueryRunner): PendingRow[] {
  const data = runner.data as Record<string, unknown> | undefined;
  return (data?.[OUTBOX_PENDING] as PendingRow[] | undefined) ?? [];
}

/** TypeORM's savepoint depth of the transaction (1 outside any savepoint). */
function depthOf(runner: QueryRunner): number {
  const depth = (runner as unknown as { transactionDepth?: unknown }).transactionDepth;
  return typeof depth === 'number' ? depth : 1;
}

/**
 * Writes a transaction's pending rows just before its COMMIT (a savepoint released hands its
 * rows to the level around it), and forgets those of a savepoint that rolls back. Registered
 * on every data source the outbox writes through.
 */
const flusher: EntitySubscriberInterface = {
  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const runner = event.queryRunner;
    const pending = pendingOf(runner);
    if (pending.length === 0) return;
    const depth = depthOf(runner);
    if (depth > 1) {
      // A savepoint released: its rows now belong to the level around it, and are written
      // with the transaction's COMMIT, so a rollback of that level still drops them.
      for (const [i, entry] of pending.entries()) {
        if (entry.depth >= depth) pending[i] = { ...entry, depth: depth - 1 };
      }
      return;
    }
    const byService = new Map<ServiceName, OutboxRow[]>();
    for (const { service, row } of pending.splice(0)) {
      const rows = byService.get(service) ?? [];
      rows.push(row);
      byService.set(service, rows);
    }
    for (const [service, rows] of byService) await insertRows(runner.manager, service, rows);
  },
  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    const pending = pendingOf(event.queryRunner);
    const depth = depthOf(event.queryRunner);
    const kept = pending.filter((entry) => entry.depth < depth);
    pending.splice(0, pending.length, ...kept);
  },
};

function watch(db: DataSource): void {
  if (!db.subscribers.includes(flusher)) db.subscribers.push(flusher);
}
