import type { DataSource, EntityManager } from 'typeorm';

import type { AuditRecord, AuditSink } from '@portcullis/audit';
import type { AuditEventType, AuditRecordPayload } from '@portcullis/contracts';
import type { ServiceName } from '@portcullis/core';

import type { Outbox, OutboxRow } from './outbox';

/**
 * Sends a service's audit records through its outbox, one row per record (the record id as
 * the row id), of type `<service>.audit.recorded`. The relay publishes the rows it finds
 * together as one message; they reach the collector when the bus is back, however long it
 * was down, and a repeat is appended once.
 */
export class OutboxAuditSink implements AuditSink {
  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly outbox: Outbox,
  ) {}

  write(records: readonly AuditRecord[]): Promise<void> {
    return this.db.transaction((tx) => this.writeIn(tx, records));
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
