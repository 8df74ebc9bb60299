import { randomUUID } from 'node:crypto';

import type { RequestContextState, ServiceName } from '@portcullis/core';

import type { AuditRecord } from './audit-record';
import { redactDetails } from './redaction';
import type { SecurityEvent } from './security-event';

/** Bounds every record respects, so that the collector's validation accepts it. */
export const RECORD_LIMITS = { type: 64, reason: 200, text: 256, details: 32 } as const;

/**
 * The audit record of a security event or a change, completed from the request context:
 * the acting user, the client address, the correlation id and the trace context. Details
 * are redacted and bounded.
 */
export function buildAuditRecord(
  event: SecurityEvent,
  service: ServiceName,
  context: RequestContextState | undefined,
  now: Date = new Date(),
): AuditRecord {
  const contextActor = context?.actor;
  const sameActor = event.actorId === undefined || event.actorId === contextActor?.id;
  const actor = {
    userId: event.actorId ?? contextActor?.id,
    roles: sameActor && contextActor ? [...contextActor.roles] : undefined,
    sessionId: sameActor ? contextActor?.sessionId : undefined,
    clientIp: event.clientIp ?? context?.clientIp,
  };
  const hasActor = Object.values(actor).some((value) => value !== undefined);
  return {
    id: randomUUID(),
    time: now.toISOString(),
    service,
    type: bounded(event.type, RECORD_LIMITS.type),
    outcome: event.outcome,
    actor: hasActor ? actor : undefined,
    resource: event.resourceType
      ? {
          type: bounded(event.resourceType, RECORD_LIMITS.type),
          id: event.resourceId === undefined ? undefined : bounded(event.resourceId, 128),
        }
      : undefined,
    correlationId: context?.correlationId ?? randomUUID(),
    traceparent: context?.traceparent,
    reason: event.reason === undefined ? undefined : bounded(event.reason, RECORD_LIMITS.reason),
    details: boundedDetails(redactDetails(event.details)),
  };
}

function bounded(text: string, length: number): string {
  return text.length > length ? text.slice(0, length) : text;
}

function boundedDetails(details: AuditRecord['details']): AuditRecord['details'] {
  if (!details) return undefined;
  const entries = Object.entries(details)
    .slice(0, RECORD_LIMITS.details)
    .map(([key, value]) => [
      bounded(key, RECORD_LIMITS.type),
      typeof value === 'string' ? bounded(value, RECORD_LIMITS.text) : value,
    ]);
  return Object.fromEntries(entries) as AuditRecord['details'];
}
