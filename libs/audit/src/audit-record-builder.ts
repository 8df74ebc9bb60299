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
    userId: textOrUndefined(event.actorId ?? contextActor?.id, 128),
    roles: sameActor && contextActor ? [...contextActor.roles] : undefined,
    sessionId: sameActor ? contextActor?.sessionId : undefined,
    clientIp: textOrUndefined(event.clientIp ?? context?.clientIp, 64),
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

/**
 * C0 controls and DEL (PostgreSQL refuses NUL in text and JSON, and none belongs in a record),
 * and lone surrogates (PostgreSQL's JSON refuses them).
 */
const UNSTORABLE =
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  /[\u0000-\u001f\u007f]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * Text as a record may hold it: at most `length` characters, well-formed UTF-16 (a lone
 * surrogate is refused by PostgreSQL's JSON too), control characters replaced by U+FFFD.
 * Whatever a caller puts in a path or a field, the record can still be stored.
 */
export function bounded(text: string, length: number): string {
  const cut = text.length > length ? text.slice(0, length) : text;
  return cut.replace(UNSTORABLE, '\ufffd');
}

function textOrUndefined(text: string | undefined, length: number): string | undefined {
  return text === undefined ? undefined : bounded(text, length);
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
