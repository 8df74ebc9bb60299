import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Adds the W3C trace context to one service's outbox, so an event relayed later still carries
 * the trace of the change that wrote it. Every app adds it after
 * {@link messagingTablesMigration}; `schema` is that app's schema.
 */
export function outboxTraceContextMigration(schema: string): new () => MigrationInterface {
  if (!/^[a-z_]+$/.test(schema)) throw new Error('invalid schema name');
  return class OutboxTraceContext1764807100000 implements MigrationInterface {
    name = 'OutboxTraceContext1764807100000';

    async up(db: QueryRunner): Promise<void> {
      await db.query(`ALTER TABLE "${schema}".outbox ADD COLUMN traceparent varchar(55)`);
    }

    async down(db: QueryRunner): Promise<void> {
      await db.query(`ALTER TABLE "${schema}".outbox DROP COLUMN traceparent`);
    }
  };
}
