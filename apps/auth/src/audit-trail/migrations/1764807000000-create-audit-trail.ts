import type { MigrationInterface, QueryRunner } from 'typeorm';

import { GENESIS_HASH } from '@portcullis/audit';

/**
 * The central audit trail in schema `audit`: an append-only hash chain of records and the
 * head the collector advances. A trigger refuses UPDATE, DELETE and TRUNCATE on the records
 * for every role; the privileges to do so are revoked from PUBLIC, and from the migrating role
 * itself unless it is a superuser (for whom privileges mean nothing).
 */
export class CreateAuditTrail1764807000000 implements MigrationInterface {
  name = 'CreateAuditTrail1764807000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE audit.records (
        sequence bigint PRIMARY KEY,
        id uuid NOT NULL UNIQUE,
        time timestamptz NOT NULL,
        service varchar(16) NOT NULL,
        type varchar(64) NOT NULL,
        outcome varchar(8) NOT NULL,
        actor_user_id varchar(128),
        actor_roles jsonb,
        actor_session_id varchar(128),
        actor_client_ip varchar(64),
        resource_type varchar(64),
        resource_id varchar(128),
        correlation_id varchar(128) NOT NULL,
        traceparent varchar(64),
        reason varchar(200),
        details jsonb,
        prev_hash char(64) NOT NULL,
        hash char(64) NOT NULL,
        appended_at timestamptz NOT NULL DEFAULT now()
      )`);
    for (const [name, columns] of [
      ['records_type_idx', 'type, sequence'],
      ['records_actor_idx', 'actor_user_id, sequence'],
      ['records_resource_idx', 'resource_type, resource_id, sequence'],
      ['records_correlation_idx', 'correlation_id'],
      ['records_time_idx', 'time'],
    ]) {
      await db.query(`CREATE INDEX ${name} ON audit.records (${columns})`);
    }
    await db.query(`
      CREATE TABLE audit.chain_head (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        sequence bigint NOT NULL,
        hash char(64) NOT NULL
      )`);
    await db.query(`INSERT INTO audit.chain_head (sequence, hash) VALUES (0, $1)`, [GENESIS_HASH]);
    await db.query(`
      CREATE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        RAISE EXCEPTION 'audit records are append-only' USING ERRCODE = 'insufficient_privilege';
      END
      $$`);
    await db.query(`
      CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records
        FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()`);
    await db.query(`
      CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON audit.records
        FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()`);
    await db.query(`REVOKE UPDATE, DELETE, TRUNCATE ON audit.records FROM PUBLIC`);
    await db.query(`
      DO $$
      BEGIN
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
          EXECUTE 'REVOKE UPDATE, DELETE, TRUNCATE ON audit.records FROM CURRENT_USER';
        END IF;
      END
      $$`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE audit.chain_head`);
    await db.query(`DROP TABLE audit.records`);
    await db.query(`DROP FUNCTION audit.refuse_change()`);
  }
}
