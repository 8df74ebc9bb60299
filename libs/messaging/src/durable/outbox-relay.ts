import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';

import { auditBatchMessageId, isAuditEventType } from '@portcullis/contracts';
import type { Actor, OutboxBacklog, ServiceName } from '@portcullis/core';

import type { BatchMessage, EnvelopeCodec } from '../envelope-codec';
import { DURABLE_EVENT_TTL_MS, type EventStream } from './event-stream';
import { sendableTraceparent } from '../trace-context';
import {
  OUTBOX_LEASE_SECONDS,
  type StoredOutboxRow,
  auditBatches,
  auditRecordsOf,
  freeOutboxRows,
  onOutboxWritten,
} from './outbox';

/**
 * Rows claimed at once. A row of audit records can hold up to `AUDIT_BATCH_LIMITS` (500
 * records, 256 kB), so this also bounds what one claim loads after a backlog.
 */
const BATCH = 100;
const POLL_MS = 500;
const CLAIM_SECONDS = OUTBOX_LEASE_SECONDS;
const RETRY_AFTER_FAILURE_SECONDS = 2;
/**
 * Rows handed over at commit and waiting to be sent, at most (a few times what a busy relay
 * sends in a turn). Past it (the stream has been slow or failing for a while), newly committed
 * rows are freed in the table and claimed from there.
 */
const HANDED_MAX = 1_000;
/**
 * A row handed over is sent from memory only while this much of its lease is left (seconds):
 * after that it belongs to the table, where any relay may claim it once the lease runs out,
 * and sending it from memory too would send it twice.
 */
const LEASE_MARGIN_SECONDS = 10;
/**
 * How long audit rows handed over wait for others before they are sent (ms), unless a batch
 * fills first. Events leave at once; audit records, which only the collector reads, leave
 * together: one message, one signature check and one append for what a service audited over
 * this time, where every commit would otherwise send its own.
 */
const AUDIT_LINGER_MS = 100;

/** A row to send: handed over by the commit that wrote it, or claimed from the table. */
interface RelayedRow {
  id: string;
  type: string;
  payload: unknown;
  actor: Actor | null;
  correlation_id: string;
  traceparent: string | null;
}

/** A row handed over, and until when (ms since the epoch) it may be sent from memory. */
interface HandedRow extends RelayedRow {
  sendBy: number;
}

/** One message to publish, and the outbox rows it carries. */
interface Outgoing {
  readonly type: string;
  readonly id: string;
  readonly data: Uint8Array;
  readonly rows: readonly string[];
}

/**
 * Moves a service's outbox to the event stream. The rows a commit of this process wrote are
 * handed over in memory: they were stored claimed by this relay (`OUTBOX_LEASE_SECONDS`), so
 * it sends them at once, reading nothing back. Other rows (written with no relay running, or
 * left by an instance that stopped before sending them) are claimed from the table once their
 * lease has run out, so several instances share the work without sending one row twice. A row
 * is sealed with its own id as the message id, published outside any transaction, and deleted
 * once the stream has it. A crash in between leaves the row to be relayed again: the stream's
 * duplicate window and the consumers' inboxes drop the repeat.
 *
 * Audit records are the exception: the records sent together leave as one
 * `<service>.audit.recorded` message carrying them in the order of their transactions (bounded by
 * `AUDIT_BATCH_LIMITS`), its id derived from their ids; the collector appends each
 * record once, by its own id.
 */
export class OutboxRelay {
  private readonly logger = new Logger(OutboxRelay.name);
  private timer?: NodeJS.Timeout;
  private running = false;
  /** Whether the table may hold rows to claim: set by the poll, cleared by a short claim. */
  private claimDue = true;
  private stopped = false;
  private stopListening?: () => void;
  private handed: HandedRow[] = [];
  /** Audit rows handed over, waiting for {@link AUDIT_LINGER_MS} or a full batch. */
  private handedAudit: HandedRow[] = [];
  private auditTimer?: NodeJS.Timeout;
  private auditDue = false;
  /** The delete of the rows sent last, if it is still running. */
  private deleting: Promise<void> = Promise.resolve();

  private readonly statements: { claim: string; published: string; failed: string };

  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly codec: EnvelopeCodec,
    private readonly stream: () => Promise<EventStream>,
  ) {
    const table = `"${service}".outbox`;
    this.statements = {
      // A CTE, so that the driver returns the claimed rows rather than an UPDATE count.
      claim: `WITH claimed AS (
           UPDATE ${table}
              SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
            WHERE id IN (SELECT id FROM ${table}
                          WHERE published_at IS NULL
                            AND (claimed_until IS NULL OR claimed_until < now())
                          ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
            RETURNING id, type, payload, actor, correlation_id, traceparent, created_at)
         SELECT * FROM claimed ORDER BY created_at`,
      published: `DELETE FROM ${table} WHERE id = ANY($1)`,
      failed: `UPDATE ${table} SET claimed_until = now() + make_interval(secs => $2) WHERE id = ANY($1)`,
    };
  }

  start(): void {
    this.stopListening = onOutboxWritten(this.db, this.service, (rows) =>
      rows ? this.take(rows) : this.nudge(),
    );
    this.timer = setInterval(() => this.nudge(), POLL_MS);
    this.timer.unref();
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.stopListening?.();
    clearInterval(this.timer);
    clearTimeout(this.auditTimer);
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.deleting;
    // Rows handed over and not sent yet: free them for any relay now, not when leases end.
    await this.free([...this.handed.splice(0), ...this.handedAudit.splice(0)]);
  }

  /** Frees rows this relay holds but will not send; should that fail, they wait for the lease. */
  private async free(rows: ReadonlyArray<{ id: string }>): Promise<void> {
    if (rows.length === 0) return;
    const ids = rows.map((row) => row.id);
    await freeOutboxRows(this.db, this.service, ids).catch((error: unknown) => {
      this.logger.warn({
        msg: 'outbox rows left leased',
        service: this.service,
        error: String(error),
      });
    });
  }

  /** Looks in the table for rows to claim, without waiting for the poll. */
  nudge(): void {
    this.claimDue = true;
    this.run();
  }

  /**
   * Rows just committed, leased to this relay: sent next, without reading them back. Rows it
   * cannot take (stopped, or no room) are freed for the table's claims; rows that were stored
   * without a lease are found there.
   */
  private take(rows: readonly StoredOutboxRow[]): void {
    const leased = rows.filter((row) => row.lease !== null);
    if (leased.length < rows.length) this.claimDue = true;
    if (this.stopped || this.handed.length + this.handedAudit.length + leased.length > HANDED_MAX) {
      void this.free(leased);
      this.claimDue = true;
    } else {
      const now = Date.now();
      for (const row of leased) {
        const { id, type, payload, actor, correlation_id, traceparent } = row;
        const sendBy = now + ((row.lease ?? 0) - LEASE_MARGIN_SECONDS) * 1000;
        const queue = isAuditEventType(type) ? this.handedAudit : this.handed;
        queue.push({ id, type, payload, actor, correlation_id, traceparent, sendBy });
      }
      this.scheduleAudit();
    }
    // After the commit's own bookkeeping (the connection goes back to the pool first).
    setImmediate(() => this.run());
  }

  /** Up to a batch of `queue`'s rows whose leases leave time to send them from memory. */
  private takeHanded(queue: HandedRow[]): RelayedRow[] {
    const now = Date.now();
    const rows = queue.splice(0, BATCH);
    const sendable = rows.filter((row) => row.sendBy > now);
    // The others are the table's now: claimed there once their leases run out.
    if (sendable.length < rows.length) this.claimDue = true;
    return sendable;
  }

  /** Whether anything is waiting: rows handed over, audit rows due, or a claim due. */
  private get pending(): boolean {
    return (
      this.handed.length > 0 || (this.auditDue && this.handedAudit.length > 0) || this.claimDue
    );
  }

  /** Audit rows waiting go now if they fill a batch, else once the first has waited enough. */
  private scheduleAudit(): void {
    if (this.handedAudit.length >= BATCH) {
      this.auditDue = true;
    } else if (this.handedAudit.length > 0 && !this.auditTimer && !this.stopped) {
      this.auditTimer = setTimeout(() => {
        this.auditTimer = undefined;
        this.auditDue = true;
        this.run();
      }, AUDIT_LINGER_MS);
      this.auditTimer.unref();
    }
  }

  private run(): void {
    if (this.stopped || this.running) return;
    this.running = true;
    void this.drain().then((finished) => {
      this.running = false;
      // Handed over or due while the last statement ran: go on now, not at the next poll.
      // After a failure, the poll or the next commit tries again.
      if (finished && this.pending) this.run();
    });
  }

  /**
   * Sends what was handed over (the audit rows once due, with the events), then claims from
   * the table when due, until there is nothing left to do. Each turn does both, so neither
   * waits for the other under a steady stream of commits.
   */
  private async drain(): Promise<boolean> {
    try {
      while (!this.stopped && this.pending) {
        const rows = this.takeHanded(this.handed);
        if (this.auditDue) {
          this.auditDue = false;
          rows.push(...this.takeHanded(this.handedAudit));
          this.scheduleAudit();
        }
        if (rows.length > 0) await this.relay(rows);
        if (this.claimDue) {
          this.claimDue = false;
          const claimed = await this.db.query<RelayedRow[]>(this.statements.claim, [
            BATCH,
            CLAIM_SECONDS,
          ]);
          if (claimed.length === BATCH) this.claimDue = true;
          if (claimed.length > 0) await this.relay(claimed);
        }
      }
      return true;
    } catch (error) {
      this.logger.warn({ msg: 'outbox relay paused', service: this.service, error: String(error) });
      return false;
    }
  }

  /** What the outbox holds unpublished: how many events, and the oldest one's age. Read-only. */
  async backlog(): Promise<OutboxBacklog> {
    const [row] = await this.db.query<Array<{ pending: number; oldest: number | null }>>(
      `SELECT count(*)::int AS pending,
              extract(epoch FROM now() - min(created_at))::float8 AS oldest
         FROM "${this.service}".outbox WHERE published_at IS NULL`,
    );
    return { pending: Number(row.pending), oldestAgeSeconds: Math.max(0, Number(row.oldest ?? 0)) };
  }

  /**
   * Publishes rows this relay holds (in the order they were written), deletes those the stream
   * accepted, and leaves the others to be claimed again after a short wait.
   */
  private async relay(rows: readonly RelayedRow[]): Promise<void> {
    let outgoing: Outgoing[];
    let results: Array<PromiseSettledResult<void>>;
    try {
      outgoing = this.seal(rows);
      const stream = await this.stream();
      results = await Promise.allSettled(
        outgoing.map((message) => stream.publish(message.type, message.id, message.data)),
      );
    } catch (error) {
      // Nothing was sent (no stream to send to): the rows go back to the table for another try.
      const ids = rows.map((row) => row.id);
      await this.db.query(this.statements.failed, [ids, RETRY_AFTER_FAILURE_SECONDS]);
      throw error;
    }

    const rowsWhere = (status: PromiseSettledResult<void>['status']): string[] =>
      outgoing.flatMap((message, i) => (results[i].status === status ? message.rows : []));
    const published = rowsWhere('fulfilled');
    const failed = rowsWhere('rejected');
    if (published.length > 0) {
      // The next batch goes out while these rows are deleted; one delete at a time.
      await this.deleting;
      this.deleting = this.db.query(this.statements.published, [published]).then(
        () => undefined,
        (error: unknown) => {
          // Still leased: sent again once the lease runs out, and dropped as a repeat.
          this.logger.warn({
            msg: 'sent outbox rows not deleted',
            service: this.service,
            error: String(error),
          });
        },
      );
    }
    if (failed.length > 0) {
      await this.db.query(this.statements.failed, [failed, RETRY_AFTER_FAILURE_SECONDS]);
      throw new Error(`${failed.length} event(s) not accepted by the stream`);
    }
  }

  /**
   * Each event row as its own message, the audit records as few messages as the bounds allow,
   * all sealed under one signature (`EnvelopeCodec.sealBatch`): a receiver verifies it once for
   * every message of the batch it gets.
   */
  private seal(rows: readonly RelayedRow[]): Outgoing[] {
    const pending: Array<{ type: string; id: string; rows: string[]; message: BatchMessage }> = [];
    const audit: RelayedRow[] = [];
    for (const row of rows) {
      if (isAuditEventType(row.type)) {
        audit.push(row);
        continue;
      }
      const options = {
        id: row.id,
        correlationId: row.correlation_id,
        actor: row.actor ?? undefined,
        traceparent: sendableTraceparent(row.traceparent ?? undefined),
        ttlMs: DURABLE_EVENT_TTL_MS,
      };
      const message = { kind: 'event' as const, type: row.type, payload: row.payload, options };
      pending.push({ type: row.type, id: row.id, rows: [row.id], message });
    }
    for (const batch of auditBatches(audit)) {
      const records = batch.flatMap((row) => auditRecordsOf(row.payload)) as Array<{ id: string }>;
      const id = auditBatchMessageId(records.map((record) => record.id));
      // Each record keeps its own correlation id and trace context; the batch has neither.
      const message = {
        kind: 'event' as const,
        type: batch[0].type,
        payload: { records },
        options: { id, correlationId: randomUUID(), ttlMs: DURABLE_EVENT_TTL_MS },
      };
      pending.push({ type: batch[0].type, id, rows: batch.map((row) => row.id), message });
    }
    const sealed = this.codec.sealBatch(
      this.service,
      pending.map((p) => p.message),
    );
    return pending.map(({ type, id, rows: ids }, i) => ({ type, id, data: sealed[i], rows: ids }));
  }
}
