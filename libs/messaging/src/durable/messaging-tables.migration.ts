import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The outbox and inbox tables of one service's schema. Every app adds this migration to its
 * own list; `schema` is that app's schema.
 */
export function messagingTablesMigration(schema: string): new () => MigrationInterface {
  if (!/^[a-z_]+$/.test(schema)) throw new Error('invalid schema name');
  return class MessagingTables1764806700000 implements MigrationInterface {
    name = 'MessagingTables1764806700000';

    async up(db: QueryRunner): Promise<void> {
      await db.query(`
        CREATE TABLE "${schema}".outbox (
          id uuid PRIMARY KEY,
          type varchar(64) NOT NULL,
          payload jsonb NOT NULL,
          actor jsonb,
          correlation_id varchar(128) NOT NULL,
          created_at timestamptz NOT NULL DEFAULT now(),
          claimed_until timestamptz,
          published_at timestamptz,
          attempts integer NOT NULL DEFAULT 0
        )`);
      await db.query(`
        CREATE INDEX outbox_pending_idx ON "${schema}".outbox (created_at)
          WHERE published_at IS NULL`);
      await db.query(`
        CREATE TABLE "${schema}".inbox (
          message_id uuid PRIMARY KEY,
          type varchar(64) NOT NULL,
          sender varchar(16) NOT NULL,
          received_at timestamptz NOT NULL DEFAULT now()
        )`);
    }

    async down(db: QueryRunner): Promise<void> {
      await db.query(`DROP TABLE "${schema}".inbox`);
      await db.query(`DROP TABLE "${schema}".outbox`);
    }
  };
}
