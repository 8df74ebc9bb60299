import { Injectable, Logger } from '@nestjs/common';
import { Metrics, RequestContext } from '@portcullis/core';

import type { SecurityEvent } from './security-event';

/** Keys whose values never enter a record, whatever their casing. */
const REDACTED_KEYS = /pass(word)?|secret|token|authorization|cookie|key|card|signature/i;

/**
 * Records security decisions: refused tokens, refused messages, denied accesses, failed
 * logins. Each record carries the correlation id of the work that caused it, and counts in
 * `portcullis_security_events_total` by type, outcome and reason.
 */
@Injectable()
export class SecurityEvents {
  private readonly logger = new Logger('SecurityEvent');

  record(event: SecurityEvent): void {
    Metrics.securityEvents.inc({
      type: event.type,
      outcome: event.outcome,
      reason: event.reason ?? '',
    });
    const context = RequestContext.current();
    this.logger.warn({
      msg: 'security event',
      ...event,
      actorId: event.actorId ?? context?.actor?.id,
      correlationId: context?.correlationId,
      details: event.details ? redact(event.details) : undefined,
    });
  }
}

function redact(details: NonNullable<SecurityEvent['details']>): SecurityEvent['details'] {
  return Object.fromEntries(
    Object.entries(details).map(([key, value]) => [
      key,
      REDACTED_KEYS.test(key) ? '[redacted]' : value,
    ]),
  );
}
