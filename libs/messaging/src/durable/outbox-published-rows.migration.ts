import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The relay now deletes a row once the stream has it, where it used to mark it published and
 * keep it: this removes the rows kept that way from one service's outbox. Every app adds it
 * after {@link outboxTraceContextMigration}; `schema` is that app's schema. Nothing to undo.
 */
export function outboxPublishedRowsMigration(schema: string): new () => MigrationInterface {
  if (!/^[a-z_]+$/.test(schema)) throw new Error('invalid schema name');
  return class OutboxPublishedRows1764807200000 implements MigrationInterface {
    name = 'OutboxPublishedRows1764807200000';

    async up(db: QueryRunner): Promise<void> {
      await db.query(`DELETE FROM "${schema}".outbox WHERE published_at IS NOT NULL`);
    }

    async down(): Promise<void> {
      // The deleted rows had been published; there is nothing to restore.
    }
  };
}
