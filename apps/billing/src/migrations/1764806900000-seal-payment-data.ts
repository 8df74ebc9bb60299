import type { MigrationInterface, QueryRunner } from 'typeorm';

import { type FieldEncryption, sealPlaintextColumn } from '@portcullis/core';

/**
 * Payment references and stored payment answers leave the database in plaintext: each is
 * sealed into a `bytea` column bound to its row, then the plaintext column is dropped.
 * Invoices gain sealed billing details, which the payer may give when paying.
 */
export function sealPaymentData(encryption: FieldEncryption): new () => MigrationInterface {
  return class SealPaymentData1764806900000 implements MigrationInterface {
    name = 'SealPaymentData1764806900000';

    async up(db: QueryRunner): Promise<void> {
      await db.query(`ALTER TABLE billing.invoices
        ADD COLUMN payment_reference_sealed bytea, ADD COLUMN billing_details_sealed bytea`);
      await sealPlaintextColumn(db, encryption, {
        schema: 'billing',
        table: 'invoices',
        from: 'payment_reference',
        to: 'payment_reference_sealed',
      });
      await db.query(`ALTER TABLE billing.invoices DROP COLUMN payment_reference`);

      await db.query(`ALTER TABLE billing.payments ADD COLUMN response_body_sealed bytea`);
      await sealPlaintextColumn(db, encryption, {
        schema: 'billing',
        table: 'payments',
        from: 'response_body',
        to: 'response_body_sealed',
      });
      await db.query(`ALTER TABLE billing.payments DROP COLUMN response_body`);
      await db.query(`ALTER TABLE billing.payments ALTER COLUMN response_body_sealed SET NOT NULL`);
    }

    down(): Promise<void> {
      // Restoring plaintext would undo the point of this migration.
      return Promise.reject(new Error('SealPaymentData1764806900000 cannot be reverted'));
    }
  };
}
