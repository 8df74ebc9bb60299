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

/** Rows a transaction enqueued and has not written yet, kept on its query runner. */
const OUTBOX_PENDING = 'portcullis.outboxPending';

/** Rows a transaction's COMMIT is about to make durable, handed to the relay once it has. */
const OUTBOX_FLUSHED = 'portcullis.outboxFlushed';

/**
 * How long the relay of the process that writes a row holds it (seconds): it relays the row
 * from memory right after the commit, and no other relay claims the row before this runs
 * out. Should that process stop first, any relay claims the row afterwards.
 */
export const OUTBOX_LEASE_SECONDS = 30;

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
 * An outbox row as it is stored (the audit records among a statement's rows packed by
 * {@link packAuditRows}), and the lease its writer's relay takes on it: seconds, or null
 * when no relay of this process will relay it from memory.
 */
export interface StoredOutboxRow {
  readonly service: ServiceName;
  readonly id: string;
  readonly type: string;
  readonly payload: unknown;
  readonly actor: Actor | null;
  readonly correlation_id: string;
  readonly traceparent: string | null;
  readonly lease: number | null;
}

/**
 * An INSERT of outbox rows into `service`'s outbox, for a WITH clause or a statement of its
 * own, reading the rows from the JSON in parameter `$<parameter>` ({@link outboxRowsJson}).
 * A change and its events then take one statement, atomic without a transaction around it.
 * A leased row is claimed by its writer's relay from the start, counted from the insert
 * (`clock_timestamp()`; `now()` is the transaction's start), and `make_interval` of a null
 * lease is null: not claimed.
 *
 * With `ownersFrom`, the name of an earlier WITH entry returning `id`, the statement writes
 * several changes of which some may be skipped (an insert `ON CONFLICT DO NOTHING`): each
 * row carries the id of its change ({@link ownedOutboxRowsJson}), and only the rows of the
 * changes that entry returns are written.
 */
export function outboxInsert(service: ServiceName, parameter: number, ownersFrom?: string): string {
  const owner = ownersFrom === undefined ? '' : ', owner uuid';
  const kept =
    ownersFrom === undefined ? '' : `\n      WHERE r.owner IN (SELECT id FROM ${ownersFrom})`;
  return preparedStatement(`INSERT INTO "${service}".outbox (id, type, payload, actor, correlation_id, traceparent, claimed_until)
     SELECT r.id, r.type, r.payload, r.actor, r.correlation_id, r.traceparent,
            clock_timestamp() + make_interval(secs => r.lease)
       FROM jsonb_to_recordset($${parameter}::jsonb) AS r(
         id uuid, type varchar, payload jsonb, actor jsonb, correlation_id varchar,
         traceparent varchar, lease integer${owner})${kept}`);
}

/**
 * The rows `service` is about to write to its outbox in `db`, as {@link outboxInsert} stores
 * them. Once the statement (or the transaction around it) has committed, pass them to
 * {@link outboxWritten}: the relay then sends them without reading them back.
 */
export function storedOutboxRows(
  db: DataSource,
  service: ServiceName,
  rows: readonly OutboxRow[],
): StoredOutboxRow[] {
  const lease = outboxLease(db, service);
  return packAuditRows(rows).map((row) => storedOutboxRow(service, row, lease));
}

/** One row as {@link outboxInsert} stores it, with the lease its writer's relay takes. */
export function storedOutboxRow(
  service: ServiceName,
  row: OutboxRow,
  lease: number | null,
): StoredOutboxRow {
  return {
    service,
    id: row.id,
    type: row.type,
    payload: row.payload,
    actor: row.actor,
    correlation_id: row.correlationId,
    traceparent: row.traceparent,
    lease,
  };
}

/**
 * The lease, in seconds, that rows `service` writes in `db` now are stored with: held by this
 * process's relay, or null when it has none.
 */
export function outboxLease(db: DataSource, service: ServiceName): number | null {
  return relayOf(db, service) ? OUTBOX_LEASE_SECONDS : null;
}

/** The parameter {@link outboxInsert} reads. */
export function outboxRowsJson(rows: readonly StoredOutboxRow[]): string {
  return JSON.stringify(rows.map((row) => insertedColumns(row)));
}

/**
 * The parameter an {@link outboxInsert} with owners reads: the rows of each change, each
 * tagged with the id of its change.
 */
export function ownedOutboxRowsJson(
  changes: ReadonlyArray<{ readonly owner: string; readonly rows: readonly StoredOutboxRow[] }>,
): string {
  return JSON.stringify(
    changes.flatMap(({ owner, rows }) => rows.map((row) => ({ ...insertedColumns(row), owner }))),
  );
}

function insertedColumns({
  id,
  type,
  payload,
  actor,
  correlation_id,
  traceparent,
  lease,
}: StoredOutboxRow): Record<string, unknown> {
  return { id, type, payload, actor, correlation_id, traceparent, lease };
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
 * costs an insert and a delete once published, so a transaction that audits ten things now
 * writes one row where it wrote ten. Other rows come first, as they are.
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
    const bytes = recordsBytes(records);
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

/**
 * The JSON size of each audit record, measured once: the same record is sized when its row is
 * packed and again when the relay cuts its batches.
 */
const recordBytes = new WeakMap<object, number>();

/** The UTF-8 size of `JSON.stringify(records)`, from the sizes of the records. */
function recordsBytes(records: readonly unknown[]): number {
  if (records.length === 0) return 2;
  // '[' and then each record followed by ',' or, after the last, ']'.
  let bytes = 1;
  for (const record of records) {
    if (typeof record !== 'object' || record === null) {
      bytes += Buffer.byteLength(JSON.stringify(record) ?? 'null') + 1;
      continue;
    }
    let size = recordBytes.get(record);
    if (size === undefined) {
      size = Buffer.byteLength(JSON.stringify(record));
      recordBytes.set(record, size);
    }
    bytes += size + 1;
  }
  return bytes;
}

/**
 * What a relay is told when rows of its service were committed: the rows, for it to send
 * (those it holds a lease on), or nothing, for it to look for them in the table.
 */
export type OutboxListener = (rows?: readonly StoredOutboxRow[]) => void;

/** The relay of each service, by data source: at most one per service takes the rows. */
const relays = new WeakMap<DataSource, Map<ServiceName, OutboxListener>>();

function relayOf(db: DataSource, service: ServiceName): OutboxListener | undefined {
  return relays.get(db)?.get(service);
}

/**
 * Makes `listener` the relay of `service`'s outbox in `db`: {@link outboxWritten} hands it the
 * rows committed from now on, leased to it. Returns the function that ends this.
 */
export function onOutboxWritten(
  db: DataSource,
  service: ServiceName,
  listener: OutboxListener,
): () => void {
  const byService = relays.get(db) ?? new Map<ServiceName, OutboxListener>();
  relays.set(db, byService);
  if (byService.has(service)) throw new Error(`${service} already has a relay on this database`);
  byService.set(service, listener);
  return () => {
    if (byService.get(service) === listener) byService.delete(service);
  };
}

/**
 * Tells the relays that `rows` (from {@link storedOutboxRows}) are committed, so that they
 * are sent now. Without rows, each relay of `db` looks in its table.
 */
export function outboxWritten(db: DataSource, rows?: readonly StoredOutboxRow[]): void {
  const byService = relays.get(db);
  if (rows === undefined) {
    for (const listener of byService?.values() ?? []) listener();
    return;
  }
  for (const service of new Set(rows.map((row) => row.service))) {
    const own = rows.filter((row) => row.service === service);
    const listener = byService?.get(service);
    const leased = own.filter((row) => row.lease !== null).map((row) => row.id);
    if (listener) listener(own);
    else if (leased.length > 0) void freeOutboxRows(db, service, leased).catch(() => undefined);
  }
}

/**
 * Frees rows leased to a relay that will not send them (it stopped, or has no room), so that
 * any relay claims them at its next poll rather than once the lease has run out. Should this
 * fail, they wait for the lease.
 */
export async function freeOutboxRows(
  db: DataSource,
  service: ServiceName,
  ids: readonly string[],
): Promise<void> {
  await db.query(`UPDATE "${service}".outbox SET claimed_until = NULL WHERE id = ANY($1)`, [ids]);
}

async function write(tx: EntityManager, service: ServiceName, rows: OutboxRow[]): Promise<void> {
  const runner = tx.queryRunner;
  if (!runner?.isTransactionActive) {
    // One statement, committed on its own: the relay can take the rows now.
    const stored = await insertRows(tx, service, rows);
    outboxWritten(tx.connection, stored);
    return;
  }
  watch(tx.connection);
  const depth = depthOf(runner);
  const pending = pendingOf(runner);
  for (const row of rows) pending.push({ depth, service, row });
  runner.data = { ...runner.data, [OUTBOX_PENDING]: pending };
}

/**
 * One statement for all the rows, built here rather than by TypeORM's insert builder, which
 * costs far more per row (about 0.1 ms of CPU for a transaction's few rows under load).
 */
async function insertRows(
  tx: EntityManager,
  service: ServiceName,
  rows: readonly OutboxRow[],
): Promise<StoredOutboxRow[]> {
  const stored = storedOutboxRows(tx.connection, service, rows);
  await tx.query(outboxInsert(service, 1), [outboxRowsJson(stored)]);
  return stored;
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
 * rows to the level around it), forgets those of a savepoint that rolls back, and hands the
 * rows to the relay once the COMMIT succeeded. Registered on every data source the outbox
 * writes through.
 */
const flusher: EntitySubscriberInterface = {
  async beforeTransactionCommit(event: TransactionCommitEvent): Promise<void> {
    const runner = event.queryRunner;
    const depth = depthOf(runner);
    if (depth === 1) setFlushed(runner, undefined);
    const pending = pendingOf(runner);
    if (pending.length === 0) return;
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
    const flushed: StoredOutboxRow[] = [];
    for (const [service, rows] of byService) {
      flushed.push(...(await insertRows(runner.manager, service, rows)));
    }
    setFlushed(runner, flushed);
  },
  afterTransactionCommit(event: TransactionCommitEvent): void {
    const runner = event.queryRunner;
    if (runner.isTransactionActive) return;
    const flushed = (runner.data as Record<string, unknown> | undefined)?.[OUTBOX_FLUSHED] as
      StoredOutboxRow[] | undefined;
    if (!flushed) return;
    setFlushed(runner, undefined);
    outboxWritten(runner.connection, flushed);
  },
  beforeTransactionRollback(event: TransactionRollbackEvent): void {
    const pending = pendingOf(event.queryRunner);
    const depth = depthOf(event.queryRunner);
    const kept = pending.filter((entry) => entry.depth < depth);
    pending.splice(0, pending.length, ...kept);
    if (depth === 1) setFlushed(event.queryRunner, undefined);
  },
};

function setFlushed(runner: QueryRunner, rows: StoredOutboxRow[] | undefined): void {
  const data = runner.data as Record<string, unknown> | undefined;
  if (rows === undefined && !data?.[OUTBOX_FLUSHED]) return;
  runner.data = { ...data, [OUTBOX_FLUSHED]: rows };
}

function watch(db: DataSource): void {
  if (!db.subscribers.includes(flusher)) db.subscribers.push(flusher);
}
