import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

import { SealedColumn } from '@portcullis/core';

export const INVOICE_STATUSES = ['open', 'paid', 'void'] as const;
export type InvoiceStatus = (typeof INVOICE_STATUSES)[number];

/** Name, address and tax id of whoever pays an invoice: personal data. */
export interface BillingDetails {
  readonly name: string;
  readonly addressLines?: string[];
  readonly postalCode?: string;
  readonly city?: string;
  readonly country?: string;
  readonly taxId?: string;
}

const bigintAsNumber = {
  to: (value: number): number => value,
  from: (value: string | number): number => Number(value),
};

@Entity({ schema: 'billing', name: 'invoices' })
export class Invoice {
  @PrimaryColumn('uuid')
  id!: string;

  @Column({ name: 'order_id', type: 'uuid', unique: true })
  orderId!: string;

  @Column({ name: 'customer_id', type: 'uuid' })
  customerId!: string;

  @Column({ name: 'amount_cents', type: 'bigint', transformer: bigintAsNumber })
  amountCents!: number;

  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ type: 'varchar', length: 8 })
  status!: InvoiceStatus;

  /** The provider's charge reference; stored sealed only. */
  paymentReference!: string | null;

  @SealedColumn({ name: 'payment_reference_sealed', plaintext: 'paymentReference', nullable: true })
  paymentReferenceSealed!: Buffer | null;

  /** Who pays, as given when paying; stored sealed only. */
  billingDetails!: BillingDetails | null;

  @SealedColumn({
    name: 'billing_details_sealed',
    plaintext: 'billingDetails',
    kind: 'json',
    nullable: true,
  })
  billingDetailsSealed!: Buffer | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'paid_at', type: 'timestamptz', nullable: true })
  paidAt!: Date | null;
}
