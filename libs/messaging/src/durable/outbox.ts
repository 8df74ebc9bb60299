import { randomUUID } from 'node:crypto';
import type { EntityManager } from 'typeorm';

import { type EventType, type PayloadOf, maySend } from '@portcullis/contracts';
import { RequestContext, type ServiceName } from '@portcullis/core';

import { sendableTraceparent } from '../trace-context';
import { OutboxRecord } from './outbox-record.entity';

/** Marks a transaction that wrote to the outbox, so its commit wakes the relay. */
export const OUTBOX_WRITTEN = 'portcullis.outboxWritten';

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
    if (tx.queryRunner) tx.queryRunner.data = { ...tx.queryRunner.data, [OUTBOX_WRITTEN]: true };
  }
}
