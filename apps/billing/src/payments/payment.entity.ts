import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

import { SealedColumn } from '@portcullis/core';

/** One payment attempt, keyed by the caller's `Idempotency-Key`, with the answer it got. */
@Entity({ schema: 'billing', name: 'payments' })
export class Payment {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'invoice_id', type: 'uuid' })
  invoiceId!: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId!: string;

  @Column({ name: 'idempotency_key', type: 'varchar', length: 255 })
  idempotencyKey!: string;

  @Column({ name: 'request_hash', type: 'char', length: 64 })
  requestHash!: string;

  @Column({ type: 'varchar', length: 16 })
  outcome!: 'succeeded' | 'declined';

  @Column({ name: 'response_status', type: 'smallint' })
  responseStatus!: number;

  /** The answer a retry gets again; it may name the payer, so it is stored sealed only. */
  responseBody!: unknown;

  @SealedColumn({ name: 'response_body_sealed', plaintext: 'responseBody', kind: 'json' })
  responseBodySealed!: Buffer;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}
