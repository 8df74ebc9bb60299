import type { ServiceName } from '@portcullis/core';

import type { SecurityOutcome } from './security-event';

/** Who acted, as far as the recording service verified it. */
export interface AuditActor {
  readonly userId?: string;
  readonly roles?: readonly string[];
  readonly sessionId?: string;
  readonly clientIp?: string;
}

/** The object a decision or a change was about. */
export interface AuditResource {
  readonly type: string;
  readonly id?: string;
}

/**
 * One entry of the central audit trail, as a service records it and the collector appends
 * it. Details never hold secrets: the recorder redacts them before the record leaves.
 */
export interface AuditRecord {
  /** UUID; also the outbox message id, so a redelivered record is appended once. */
  readonly id: string;
  /** ISO 8601 time at which the recording service saw the fact. */
  readonly time: string;
  readonly service: ServiceName;
  readonly type: string;
  readonly outcome: SecurityOutcome;
  readonly actor?: AuditActor;
  readonly resource?: AuditResource;
  readonly correlationId: string;
  readonly traceparent?: string;
  readonly reason?: string;
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
}

/**
 * Something that reacts to records once the collector has appended them to the chain, such
 * as the detection rules. Observers must not throw for a record they do not understand.
 */
export interface AuditObserver {
  observe(records: readonly AuditRecord[]): Promise<void>;
}

/** Injection token under which the collector's host registers its observers (an array). */
export const AUDIT_OBSERVERS = Symbol('AUDIT_OBSERVERS');
