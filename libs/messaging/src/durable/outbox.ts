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
  type AuditEventType,
  type AuditRecordPayload,
  type EventType,
  type PayloadOf,
  maySend,
} from '@portcullis/contracts';
import { type Actor, RequestContext, type ServiceName } from '@portcullis/core';

import { sendableTraceparent } from '../trace-context';
import { OutboxRecord } from './outbox-record.entity';

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

type OutboxRow = Pick<
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
  readonly row: OutboxRow;
}

/**
 * Records this service's events in the same transaction as the change they report. The
 * relay publishes them after commit; if the transaction rolls back, the event never existed.
 *
 * Inside a transaction, the rows are kept until it commits and then written, all of them,
 * with one multi-row insert just before the COMMIT (a change that records an event and its
 * audit records costs one statement, not one per row); a failed insert fails the commit. A
 * savepoint rolled back drops the rows enqueued inside it. Outside a transaction a row is
 * inserted at once.
 */
export class Outbox {
  constructor(readonly service: ServiceName) {}

  enqueue<T extends EventType>(tx: EntityManager, type: T, payload: PayloadOf<T>): Promise<void> {
    if (!maySend(type, this.service, 'event')) {
      throw new Error(`${this.service} may not publish ${type}`);
    }
    const context = RequestContext.current();
    return write(tx, [
      {
        id: randomUUID(),
        type,
        payload: { ...payload },
        actor: context?.actor ?? null,
        correlationId: context?.correlationId ?? randomUUID(),
        traceparent: sendableTraceparent(context?.traceparent) ?? null,
        claimedUntil: null,
        publishedAt: null,
        attempts: 0,
      },
    ]);
  }

  /** Records several events of one type, each with its own id. */
  enqueueAll<T extends EventType>(
    tx: EntityManager,
    type: T,
    items: ReadonlyArray<OutboxItem<T>>,
  ): Promise<void> {
    if (!maySend(type, this.service, 'event')) {
      throw new Error(`${this.service} may not publish ${type}`);
    }
    if (items.length === 0) return Promise.resolve();
    return write(
      tx,
      items.map((item) => ({
        id: item.id,
        type,
        payload: { ...item.payload },
        actor: item.actor ?? null,
        correlationId: item.correlationId,
        traceparent: null,
        claimedUntil: null,
        publishedAt: null,
        attempts: 0,
      })),
    );
  }
}

async function write(tx: EntityManager, rows: OutboxRow[]): Promise<void> {
  const runner = tx.queryRunner;
  if (!runner?.isTransactionActive) {
    await tx.insert(OutboxRecord, rows);
    if (runner) runner.data = { ...runner.data, [OUTBOX_WRITTEN]: true };
    return;
  }
  watch(tx.connection);
  const depth = depthOf(runner);
  const pending = pendingOf(runner);
  for (const row of rows) pending.push({ depth, row });
  runner.data = { ...runner.data, [OUTBOX_PENDING]: pending, [OUTBOX_WRITTEN]: true };
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
        if (entry.depth >= depth) pending[i] = { depth: depth - 1, row: entry.row };
      }
      return;
    }
    const rows = pending.splice(0).map((entry) => entry.row);
    await runner.manager.insert(OutboxRecord, rows);
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
