import type { DataSource, EntityManager } from 'typeorm';

import type { AuditRecord, AuditSink } from '@portcullis/audit';
import type { AuditEventType, AuditRecordPayload } from '@portcullis/contracts';
import type { ServiceName } from '@portcullis/core';

import type { Outbox, OutboxRow } from './outbox';

/**
 * Sends a service's audit records through its outbox, as rows of type
 * `<service>.audit.recorded`: the records one statement writes share a row (`packAuditRows`).
 * The relay publishes the rows it finds together as one message; they reach the collector
 * when the bus is back, however long it was down, and a repeat is appended once.
 */
export class OutboxAuditSink implements AuditSink {
  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly outbox: Outbox,
  ) {}

  /** Records decided outside any transaction: one INSERT, atomic on its own. */
  write(records: readonly AuditRecord[]): Promise<void> {
    return this.outbox.enqueueAll(this.db.manager, this.type, this.items(records));
  }

  writeIn(transaction: unknown, records: readonly AuditRecord[]): Promise<void> {
    return this.outbox.enqueueAll(transaction as EntityManager, this.type, this.items(records));
  }

  /** The outbox rows of records, for a change that writes them itself (`outboxInsert`). */
  rowsOf(records: readonly AuditRecord[]): OutboxRow[] {
    return this.outbox.rows(this.type, this.items(records));
  }

  private get type(): AuditEventType {
    return `${this.service}.audit.recorded`;
  }

  private items(records: readonly AuditRecord[]) {
    return records.map((record) => ({
      id: record.id,
      payload: record as AuditRecordPayload,
      correlationId: record.correlationId,
    }));
  }
}
