import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

import type { Actor } from '@portcullis/core';

/**
 * An event written in the same transaction as the change it reports, relayed to the bus
 * afterwards. No schema is named: each service's DataSource places it in its own schema.
 */
@Entity({ name: 'outbox' })
export class OutboxRecord {
  /** Becomes the envelope's message id, so every redelivery carries the same id. */
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ type: 'varchar', length: 64 })
  type!: string;

  @Column({ type: 'jsonb' })
  payload!: object;

  @Column({ type: 'jsonb', nullable: true })
  actor!: Actor | null;

  @Column({ name: 'correlation_id', type: 'varchar', length: 128 })
  correlationId!: string;

  /** W3C trace context of the change that wrote the event, carried in its envelope. */
  @Column({ type: 'varchar', length: 55, nullable: true })
  traceparent!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  /** A relay has taken the record until then; another may take it after. */
  @Column({ name: 'claimed_until', type: 'timestamptz', nullable: true })
  claimedUntil!: Date | null;

  @Column({ name: 'published_at', type: 'timestamptz', nullable: true })
  publishedAt!: Date | null;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;
}
