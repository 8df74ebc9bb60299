import type { AuditRecord } from './audit-record';

/**
 * Where a service's audit records leave it: its transactional outbox. The messaging library
 * attaches one per hosted service; without one, records are only logged.
 */
export interface AuditSink {
  /** Writes records in a transaction of their own, as one multi-row insert. */
  write(records: readonly AuditRecord[]): Promise<void>;
  /** Writes records in the caller's transaction (a TypeORM `EntityManager`). */
  writeIn(transaction: unknown, records: readonly AuditRecord[]): Promise<void>;
}
