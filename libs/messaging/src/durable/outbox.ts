import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';

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

/**
 * Records this service's events in the same transaction as the change they report. The
 * relay publishes them after commit; if the transaction rolls back, the event never existed.
 */
export class Outbox {
  constructor(readonly service: ServiceName) {}

  async enqueue<T extends EventType>(
    tx: EntityManager,
    type: T,
    payload: PayloadOf<T>,
  ): Promise<void> {
    if (!maySend(type, this.service, 'event')) {
      throw new Error(`${this.service} may not publish ${type}`);
    }
    const context = RequestContext.current();
    await tx.insert(OutboxRecord, {
      id: randomUUID(),
      type,
      payload: { ...payload },
      actor: context?.actor ?? null,
      correlationId: context?.correlationId ?? randomUUID(),
      traceparent: sendableTraceparent(context?.traceparent) ?? null,
      claimedUntil: null,
      publishedAt: null,
      attempts: 0,
    });
    markWritten(tx);
  }

  /** Records several events of one type with one multi-row insert, each with its own id. */
  async enqueueAll<T extends EventType>(
    tx: EntityManager,
    type: T,
    items: ReadonlyArray<OutboxItem<T>>,
  ): Promise<void> {
    if (!maySend(type, this.service, 'event')) {
      throw new Error(`${this.service} may not publish ${type}`);
    }
    if (items.length === 0) return;
    await tx.insert(
      OutboxRecord,
      items.map((item) => ({
        id: item.id,
        type,
        payload: { ...item.payload },
        actor: item.actor ?? null,
        correlationId: item.correlationId,
        claimedUntil: null,
        publishedAt: null,
        attempts: 0,
      })),
    );
    markWritten(tx);
  }
}

function markWritten(tx: EntityManager): void {
  if (tx.queryRunner) tx.queryRunner.data = { ...tx.queryRunner.data, [OUTBOX_WRITTEN]: true };
}
