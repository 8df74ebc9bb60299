import { Controller, Inject } from '@nestjs/common';
import { EventPattern, Payload } from '@nestjs/microservices';

import { type AuditRecord, SecurityEvents } from '@portcullis/audit';
import type { AuditRecordedEvent } from '@portcullis/contracts';
import type { VerifiedMessage } from '@portcullis/messaging';

import { AuditCollector } from './audit-collector';

/**
 * Takes the audit records every service publishes. The transport has verified the envelope
 * and that its sender may publish the type; the record itself must also name that sender as
 * its service, or it is refused (and the refusal recorded), whatever else it says.
 */
@Controller()
export class AuditRecordsHandler {
  constructor(
    @Inject(AuditCollector) private readonly collector: AuditCollector,
    private readonly events: SecurityEvents,
  ) {}

  @EventPattern('auth.audit.recorded')
  fromAuth(@Payload() message: VerifiedMessage<AuditRecordedEvent>): Promise<void> {
    return this.take(message);
  }

  @EventPattern('orders.audit.recorded')
  fromOrders(@Payload() message: VerifiedMessage<AuditRecordedEvent>): Promise<void> {
    return this.take(message);
  }

  @EventPattern('billing.audit.recorded')
  fromBilling(@Payload() message: VerifiedMessage<AuditRecordedEvent>): Promise<void> {
    return this.take(message);
  }

  private async take(message: VerifiedMessage<AuditRecordedEvent>): Promise<void> {
    const record = message.payload;
    if (record.service !== message.sender || record.id !== message.id) {
      this.events.record({
        type: 'audit.record_refused',
        outcome: 'denied',
        service: 'auth',
        reason: record.service !== message.sender ? 'service_mismatch' : 'id_mismatch',
        details: { sender: message.sender, claimedService: record.service, messageId: message.id },
      });
      return;
    }
    await this.collector.collect(toRecord(record));
  }
}

/** The validated payload as a plain record (no class instances, no absent keys). */
function toRecord(payload: AuditRecordedEvent): AuditRecord {
  return JSON.parse(JSON.stringify(payload)) as AuditRecord;
}
