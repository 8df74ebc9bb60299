import type { MigrationInterface, QueryRunner } from 'typeorm';

import { type FieldEncryption, sealPlaintextColumn } from '@portcullis/core';

import { ACCOUNT_EMAIL_INDEX } from '../accounts/account.entity';

/**
 * Emails leave the database in plaintext: each is sealed into `email_sealed` (bound to its
 * row) and indexed by a keyed HMAC in `email_index`, which takes over uniqueness; then the
 * plaintext column is dropped. Login-failure counters, keyed by a bare SHA-256 of the email
 * until now, start again under keyed subjects.
 */
export function sealAccountEmails(encryption: FieldEncryption): new () => MigrationInterface {
  return class SealAccountEmails1764806800000 implements MigrationInterface {
    name = 'SealAccountEmails1764806800000';

    async up(db: QueryRunner): Promise<void> {
      await db.query(`ALTER TABLE auth.accounts
        ADD COLUMN email_sealed bytea, ADD COLUMN email_index bytea`);
      await sealPlaintextColumn(db, encryption, {
        schema: 'auth',
        table: 'accounts',
        from: 'email',
        to: 'email_sealed',
        index: { column: 'email_index', purpose: ACCOUNT_EMAIL_INDEX },
      });
      await db.query(`ALTER TABLE auth.accounts DROP COLUMN email`);
      await db.query(`ALTER TABLE auth.accounts
        ALTER COLUMN email_sealed SET NOT NULL,
        ALTER COLUMN email_index SET NOT NULL,
        ADD CONSTRAINT accounts_email_index_key UNIQUE (email_index)`);
      await db.query(`DELETE FROM auth.login_failures`);
    }

    down(): Promise<void> {
      // Restoring plaintext emails would undo the point of this migration.
      return Promise.reject(new Error('SealAccountEmails1764806800000 cannot be reverted'));
    }
  };
}
