import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';

import { type AuditRecord, SecurityEvents } from '@portcullis/audit';
import {
  type AuditRecordPayload,
  AuditRecordedEvent,
  auditBatchMessageId,
} from '@portcullis/contracts';
import type { VerifiedMessage } from '@portcullis/messaging';

import { AuditCollector } from './audit-collector';

/** What a `<service>.audit.recorded` message may carry: a batch, or one record (earlier form). */
type AuditRecordsMessage = VerifiedMessage<AuditRecordedEvent | AuditRecordPayload>;

/**
 * Takes the audit records every service publishes. The transport has verified the envelope
 * and that its sender may publish the type; each record must also name that sender as its
 * service, or it is refused (and the refusal recorded), whatever else it says. The message id
 * must be the one its records determine: the batch id of their ids, or, for a message of one
 * record in the earlier form, the record's own id.
 */
@Controller()
export class AuditRecordsHandler {
  constructor(
    @Inject(AuditCollector) private readonly collector: AuditCollector,
    private readonly events: SecurityEvents,
  ) {}

  @EventPattern('auth.audit.recorded')
  fromAuth(@Payload() message: AuditRecordsMessage): Promise<void> {
    return this.take(message);
  }

  @EventPattern('orders.audit.recorded')
  fromOrders(@Payload() message: AuditRecordsMessage): Promise<void> {
    return this.take(message);
  }

  @EventPattern('billing.audit.recorded')
  fromBilling(@Payload() message: AuditRecordsMessage): Promise<void> {
    return this.take(message);
  }

  private async take(message: AuditRecordsMessage): Promise<void> {
    const payload = message.payload;
    const batch = payload instanceof AuditRecordedEvent;
    const records = batch ? payload.records : [payload];
    const expectedId = batch ? auditBatchMessageId(records.map((r) => r.id)) : records[0].id;
    if (message.id !== expectedId) {
      this.refuse(message, records[0], 'id_mismatch', records.length);
      return;
    }
    const accepted: AuditRecord[] = [];
    for (const record of records) {
      if (record.service === message.sender) accepted.push(toRecord(record));
      else this.refuse(message, record, 'service_mismatch', 1);
    }
    if (accepted.length > 0) await this.collector.collect(accepted);
  }

  private refuse(
    message: AuditRecordsMessage,
    record: AuditRecordPayload,
    reason: 'id_mismatch' | 'service_mismatch',
    records: number,
  ): void {
    this.events.record({
      type: 'audit.record_refused',
      outcome: 'denied',
      service: 'auth',
      reason,
      details: {
        sender: message.sender,
        claimedService: record.service,
        messageId: message.id,
        recordId: record.id,
        records,
      },
    });
  }
}

/** The validated payload as a plain record (no class instances, no absent keys). */
function toRecord(payload: AuditRecordPayload): AuditRecord {
  return JSON.parse(JSON.stringify(payload)) as AuditRecord;
}
