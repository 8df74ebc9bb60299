import type { QueryRunner } from 'typeorm';

import type { FieldEncryption } from './field-encryption';
import { sealedFieldContext } from './sealed-column';

const BATCH = 500;

/** A plaintext column whose values a migration moves into a sealed column. */
export interface PlaintextColumn {
  readonly schema: string;
  readonly table: string;
  /** The plaintext column (text, varchar or jsonb), dropped by the migration afterwards. */
  readonly from: string;
  /** The sealed `bytea` column. */
  readonly to: string;
  /** Also fill a blind-index column from the plaintext. */
  readonly index?: { readonly column: string; readonly purpose: string };
}

/**
 * Seals the values a plaintext column already holds, row by row, inside the migration's
 * transaction: used once, when a column becomes encrypted. Values are bound to their row as
 * the application binds them, so the application opens them as its own.
 */
export async function sealPlaintextColumn(
  db: QueryRunner,
  encryption: FieldEncryption,
  column: PlaintextColumn,
): Promise<number> {
  const table = `"${column.schema}"."${column.table}"`;
  let sealed = 0;
  for (;;) {
    const rows = (await db.query(
      `SELECT id, "${column.from}"::text AS value FROM ${table}
        WHERE "${column.from}" IS NOT NULL AND "${column.to}" IS NULL ORDER BY id LIMIT ${BATCH}`,
    )) as Array<{ id: string; value: string }>;
    if (rows.length === 0) return sealed;
    for (const row of rows) {
      const context = sealedFieldContext(column.schema, column.table, column.to, row.id);
      const values: unknown[] = [row.id, await encryption.cipher.seal(row.value, context)];
      if (column.index)
        values.push(encryption.blindIndex().digest(column.index.purpose, row.value));
      await db.query(
        `UPDATE ${table} SET "${column.to}" = $2
           ${column.index ? `, "${column.index.column}" = $3` : ''} WHERE id = $1`,
        values,
      );
      sealed += 1;
    }
  }
}
