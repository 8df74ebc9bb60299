import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateAccounts1764806400000 implements MigrationInterface {
  name = 'CreateAccounts1764806400000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE auth.accounts (
        id uuid PRIMARY KEY,
        email varchar(254) NOT NULL UNIQUE,
        password_hash text NOT NULL,
        roles text[] NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT accounts_roles_known
          CHECK (roles <@ ARRAY['customer', 'admin', 'auditor']::text[])
      )`);
    await db.query(`
      CREATE TABLE auth.sessions (
        id uuid PRIMARY KEY,
        account_id uuid NOT NULL REFERENCES auth.accounts (id) ON DELETE CASCADE,
        created_at timestamptz NOT NULL DEFAULT now(),
        expires_at timestamptz NOT NULL,
        revoked_at timestamptz
      )`);
    await db.query(`CREATE INDEX sessions_account_idx ON auth.sessions (account_id)`);
    await db.query(`
      CREATE TABLE auth.refresh_tokens (
        token_hash char(64) PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES auth.sessions (id) ON DELETE CASCADE,
        issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        spent_at timestamptz
      )`);
    await db.query(`CREATE INDEX refresh_tokens_session_idx ON auth.refresh_tokens (session_id)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE auth.refresh_tokens`);
    await db.query(`DROP TABLE auth.sessions`);
    await db.query(`DROP TABLE auth.accounts`);
  }
}
