import type { MigrationInterface, QueryRunner } from 'typeorm';

export class KeysAndLoginLimits1764806400001 implements MigrationInterface {
  name = 'KeysAndLoginLimits1764806400001';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE auth.signing_keys (
        kid varchar(64) PRIMARY KEY,
        algorithm varchar(8) NOT NULL CHECK (algorithm = 'RS256'),
        public_jwk jsonb NOT NULL,
        private_key_sealed bytea NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        retired_at timestamptz,
        withdrawn_at timestamptz
      )`);
    await db.query(`
      CREATE UNIQUE INDEX signing_keys_one_active ON auth.signing_keys ((true))
        WHERE retired_at IS NULL`);
    await db.query(`
      CREATE TABLE auth.login_failures (
        subject varchar(300) PRIMARY KEY,
        failures integer NOT NULL,
        window_started_at timestamptz NOT NULL,
        last_failure_at timestamptz NOT NULL
      )`);
    await db.query(`ALTER TABLE auth.sessions ADD COLUMN revoked_reason varchar(32)`);
    await db.query(`CREATE INDEX sessions_revoked_idx ON auth.sessions (revoked_at)
      WHERE revoked_at IS NOT NULL`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP INDEX auth.sessions_revoked_idx`);
    await db.query(`ALTER TABLE auth.sessions DROP COLUMN revoked_reason`);
    await db.query(`DROP TABLE auth.login_failures`);
    await db.query(`DROP TABLE auth.signing_keys`);
  }
}
