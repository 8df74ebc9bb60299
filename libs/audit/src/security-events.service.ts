import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import {
  Metrics,
  RequestContext,
  SERVICE_NAMES,
  type ServiceName,
  isServiceName,
} from '@portcullis/core';

import type { AuditRecord } from './audit-record';
import { buildAuditRecord } from './audit-record-builder';
import type { AuditSink } from './audit-sink';
import type { SecurityEvent } from './security-event';
import { serviceOfPath } from './service-of-path';

/** Records written together when decisions come in quickly. */
const BATCH = 200;
/** How long a decision outside a transaction waits for others to join its batch. */
const LINGER_MS = 20;
/** Pause before a failed batch is written again (the database may be restarting). */
const RETRY_MS = 1_000;
/** Records kept while the outbox cannot be written; the oldest go first beyond this. */
const MAX_PENDING = 50_000;

/**
 * Records security decisions and changes: refused tokens and messages, denied accesses,
 * failed logins, state-changing requests, handled messages. Each becomes an
 * {@link AuditRecord} carrying the acting user and the correlation id of the work that caused
 * it, is logged (warn when denied or failed), and leaves its service through that service's
 * outbox: in the caller's transaction with {@link recordIn}, otherwise within milliseconds in
 * small multi-row batches. Each also counts in `portcullis_security_events_total` by type,
 * outcome and reason.
 */
@Injectable()
export class SecurityEvents implements OnApplicationShutdown {
  private readonly logger = new Logger('SecurityEvent');
  private readonly sinks = new Map<ServiceName, AuditSink>();
  private readonly pending = new Map<ServiceName, AuditRecord[]>();
  private timer?: NodeJS.Timeout;
  private flushing?: Promise<void>;

  /** Sends the records of `service` to `sink` from now on. */
  attach(service: ServiceName, sink: AuditSink): void {
    this.sinks.set(service, sink);
  }

  /** Records a decision taken outside a transaction; it is written shortly after. */
  record(event: SecurityEvent): void {
    const record = this.build(event);
    this.log(record);
    if (!this.sinks.has(record.service)) return;
    const queue = this.pending.get(record.service) ?? [];
    queue.push(record);
    this.pending.set(record.service, queue);
    if (queue.length > MAX_PENDING) {
      queue.splice(0, queue.length - MAX_PENDING);
      this.logger.error({ msg: 'audit records dropped', service: record.service });
    }
    this.schedule(queue.length >= BATCH ? 0 : LINGER_MS);
  }

  /**
   * Records a change in the transaction that makes it (a TypeORM `EntityManager`): the record
   * exists if and only if the change commits.
   */
  async recordIn(transaction: unknown, event: SecurityEvent): Promise<AuditRecord> {
    const record = this.prepare(event);
    await this.sinks.get(record.service)?.writeIn(transaction, [record]);
    return record;
  }

  /**
   * The record of a decision, counted and logged like any other, for a change that writes it
   * itself in the statement that makes the change (the caller writes it, or nothing is).
   */
  prepare(event: SecurityEvent): AuditRecord {
    const record = this.draft(event);
    this.announce([record]);
    return record;
  }

  /**
   * The record of a change that may not happen, for a statement that writes it only if the
   * change takes place: built in the current context, but neither counted nor logged until
   * it is passed to {@link announce}, once written.
   */
  draft(event: SecurityEvent): AuditRecord {
    return this.build(event);
  }

  /** Counts and logs records from {@link draft} that were written. */
  announce(records: readonly AuditRecord[]): void {
    for (const record of records) this.log(record);
  }

  /** Writes every pending record now. */
  async flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    while (this.flushing) await this.flushing;
    this.flushing = this.writePending().finally(() => {
      this.flushing = undefined;
    });
    await this.flushing;
  }

  async onApplicationShutdown(): Promise<void> {
    await this.flush().catch(() => undefined);
  }

  private build(event: SecurityEvent): AuditRecord {
    const context = RequestContext.current();
    return buildAuditRecord(event, this.serviceOf(event, context?.service, context?.path), context);
  }

  /**
   * The service that took the decision: the one the event names, else the one doing the work
   * (the service whose inbox applies a message, or that owns the HTTP route), else, in a
   * process hosting several, the first hosted (auth in the one-process shape).
   */
  private serviceOf(event: SecurityEvent, working?: string, path?: string): ServiceName {
    const hosted = SERVICE_NAMES.filter((name) => this.sinks.has(name));
    const candidates = [event.service, working, serviceOfPath(path)];
    for (const candidate of candidates) {
      if (isServiceName(candidate) && (hosted.length === 0 || hosted.includes(candidate))) {
        return candidate;
      }
    }
    return hosted[0] ?? 'auth';
  }

  private log(record: AuditRecord): void {
    Metrics.securityEvents.inc({
      type: record.type,
      outcome: record.outcome,
      reason: record.reason ?? '',
    });
    const line = {
      msg: 'security event',
      type: record.type,
      outcome: record.outcome,
      service: record.service,
      reason: record.reason,
      actorId: record.actor?.userId,
      clientIp: record.actor?.clientIp,
      resourceType: record.resource?.type,
      resourceId: record.resource?.id,
      correlationId: record.correlationId,
      details: record.details,
    };
    if (record.outcome === 'allowed') this.logger.debug(line);
    else this.logger.warn(line);
  }

  private schedule(delayMs: number): void {
    if (this.timer && delayMs > 0) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.flush().catch(() => undefined);
    }, delayMs);
    this.timer.unref();
  }

  /**
   * Writes each service's queue in batches. A batch the database refuses for its content is
   * written again record by record, and a record refused on its own is dropped and logged, so
   * that one record can never hold back the others; any other failure (the database is away)
   * keeps the records for a later attempt, without stopping the other services' queues.
   */
  private async writePending(): Promise<void> {
    let retry = false;
    for (const [service, queue] of this.pending) {
      const sink = this.sinks.get(service);
      while (sink && queue.length > 0) {
        const batch = queue.slice(0, BATCH);
        let settled = batch.length;
        try {
          await sink.write(batch);
        } catch (error) {
          settled = isRefusedContent(error) ? await this.writeOneByOne(service, sink, batch) : 0;
          if (settled < batch.length) {
            this.logger.warn({
              msg: 'audit records not yet written',
              service,
              error: String(error),
            });
          }
        }
        queue.splice(0, settled);
        if (settled < batch.length) {
          retry = true;
          break;
        }
      }
    }
    if (retry) this.schedule(RETRY_MS);
  }

  /** How many of `batch`, from its start, are written or dropped for good. */
  private async writeOneByOne(
    service: ServiceName,
    sink: AuditSink,
    batch: readonly AuditRecord[],
  ): Promise<number> {
    for (const [index, record] of batch.entries()) {
      try {
        await sink.write([record]);
      } catch (error) {
        if (!isRefusedContent(error)) return index;
        Metrics.securityEvents.inc({ type: 'audit.record_dropped', outcome: 'failed', reason: '' });
        this.logger.error({
          msg: 'audit record refused by the database and dropped',
          service,
          id: record.id,
          type: record.type,
          error: String(error),
        });
      }
    }
    return batch.length;
  }
}

/** PostgreSQL's "data exception" class (22xxx): the content, not the connection, was refused. */
function isRefusedContent(error: unknown): boolean {
  const code =
    (error as { code?: unknown; driverError?: { code?: unknown } } | undefined)?.driverError
      ?.code ?? (error as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && code.startsWith('22');
}
