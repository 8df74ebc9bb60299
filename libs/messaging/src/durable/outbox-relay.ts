import { Logger } from '@nestjs/common';
import type { DataSource, EntitySubscriberInterface, TransactionCommitEvent } from 'typeorm';

import type { Actor, OutboxBacklog, ServiceName } from '@portcullis/core';

import type { EnvelopeCodec } from '../envelope-codec';
import { DURABLE_EVENT_TTL_MS, type EventStream } from './event-stream';
import { sendableTraceparent } from '../trace-context';
import { OUTBOX_WRITTEN } from './outbox';

const BATCH = 100;
const POLL_MS = 500;
const CLAIM_SECONDS = 30;
const RETRY_AFTER_FAILURE_SECONDS = 2;

interface ClaimedRow {
  id: string;
  type: string;
  payload: unknown;
  actor: Actor | null;
  correlation_id: string;
  traceparent: string | null;
  created_at: Date;
}

/**
 * Moves a service's outbox to the event stream. Rows are claimed for a while (so several
 * instances share the work without sending one row twice), sealed with their own id as the
 * message id, published outside any transaction, and marked published once the stream has
 * them. A crash in between leaves the row to be relayed again: the stream's duplicate window
 * and the consumers' inboxes drop the repeat.
 */
export class OutboxRelay implements EntitySubscriberInterface {
  private readonly logger = new Logger(OutboxRelay.name);
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly codec: EnvelopeCodec,
    private readonly stream: () => Promise<EventStream>,
  ) {}

  start(): void {
    this.db.subscribers.push(this);
    this.timer = setInterval(() => this.nudge(), POLL_MS);
    this.timer.unref();
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    while (this.running) await new Promise((resolve) => setTimeout(resolve, 10));
  }

  /** A transaction that wrote to the outbox committed: relay without waiting for the poll. */
  afterTransactionCommit(event: TransactionCommitEvent): void {
    const data = event.queryRunner.data as Record<string, unknown> | undefined;
    if (!data?.[OUTBOX_WRITTEN]) return;
    data[OUTBOX_WRITTEN] = false;
    this.nudge();
  }

  nudge(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.drain().finally(() => {
      this.running = false;
    });
  }

  private async drain(): Promise<void> {
    try {
      let relayed: number;
      do {
        this.again = false;
        relayed = await this.relayBatch();
      } while (!this.stopped && (relayed === BATCH || this.again));
    } catch (error) {
      this.logger.warn({ msg: 'outbox relay paused', service: this.service, error: String(error) });
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

  private async relayBatch(): Promise<number> {
    const table = `"${this.service}".outbox`;
    // A CTE, so that the driver returns the claimed rows rather than an UPDATE count.
    const rows = await this.db.query<ClaimedRow[]>(
      `WITH claimed AS (
         UPDATE ${table}
            SET claimed_until = now() + make_interval(secs => $2), attempts = attempts + 1
          WHERE id IN (SELECT id FROM ${table}
                        WHERE published_at IS NULL
                          AND (claimed_until IS NULL OR claimed_until < now())
                        ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
          RETURNING id, type, payload, actor, correlation_id, traceparent, created_at)
       SELECT * FROM claimed`,
      [BATCH, CLAIM_SECONDS],
    );
    if (rows.length === 0) return 0;
    rows.sort((a, b) => new Date(a.created_at).getTime() - new Date(b.created_at).getTime());

    const stream = await this.stream();
    const results = await Promise.allSettled(
      rows.map((row) => {
        const data = this.codec.seal(this.service, 'event', row.type, row.payload, {
          id: row.id,
          correlationId: row.correlation_id,
          actor: row.actor ?? undefined,
          traceparent: sendableTraceparent(row.traceparent ?? undefined),
          ttlMs: DURABLE_EVENT_TTL_MS,
        });
        return stream.publish(row.type, row.id, data);
      }),
    );

    const published = rows.filter((_, i) => results[i].status === 'fulfilled').map((r) => r.id);
    const failed = rows.filter((_, i) => results[i].status === 'rejected').map((r) => r.id);
    if (published.length > 0) {
      await this.db.query(
        `UPDATE ${table} SET published_at = now(), claimed_until = NULL WHERE id = ANY($1)`,
        [published],
      );
    }
    if (failed.length > 0) {
      await this.db.query(
        `UPDATE ${table} SET claimed_until = now() + make_interval(secs => $2) WHERE id = ANY($1)`,
        [failed, RETRY_AFTER_FAILURE_SECONDS],
      );
      throw new Error(`${failed.length} event(s) not accepted by the stream`);
    }
    return rows.length;
  }
}
