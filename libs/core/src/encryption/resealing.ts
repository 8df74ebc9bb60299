import type { DataSource, EntityManager, QueryRunner } from 'typeorm';

import { BlindIndex } from '@portcullis/crypto';

import type { FieldEncryption } from './field-encryption';
import { sealedFieldContext, sealedFieldsOf } from './sealed-column';

/** How many rows one resealing statement batch covers. */
export const DEFAULT_BATCH_SIZE = 500;

interface IdAndBytes {
  id: string;
  value: Uint8Array;
  source?: Uint8Array;
}

/** What one pass over one column did. */
export interface ResealReport {
  readonly table: string;
  readonly column: string;
  /** Rows brought to the newest key version. */
  readonly updated: number;
  /** Rows another writer changed meanwhile; they are left to the next pass. */
  readonly skipped: number;
}

/** Big-endian bytes of a version, as sealed fields and blind-index digests store it. */
function versionBytes(version: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(version);
  return bytes;
}

/**
 * Brings every sealed field and blind index of an entity's table to the newest key versions,
 * in batches of short transactions, while the apps keep serving. Finds old rows by the version
 * in their bytes; an update applies only if the row still holds the bytes that were read, so
 * a concurrent write by an app is never overwritten (it is already under a current version,
 * or the next pass takes it).
 */
export async function resealTable(
  dataSource: DataSource,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entity: Function,
  encryption: FieldEncryption,
  batchSize = DEFAULT_BATCH_SIZE,
): Promise<ResealReport[]> {
  const fields = sealedFieldsOf(entity);
  if (!fields) return [];
  const metadata = dataSource.getMetadata(entity);
  const schema = metadata.schema!;
  const table = `"${schema}"."${metadata.tableName}"`;
  const reports: ResealReport[] = [];

  for (const field of fields.sealed) {
    const current = versionBytes(encryption.cipher.keys.currentVersion());
    const report = await inBatches(dataSource, batchSize, {
      select: `SELECT id, "${field.column}" AS value FROM ${table}
        WHERE "${field.column}" IS NOT NULL AND substring("${field.column}" from 2 for 4) < $1`,
      parameters: [current],
      reseal: async (row, tx) => {
        const context = sealedFieldContext(schema, metadata.tableName, field.column, row.id);
        const plaintext = await encryption.cipher.open(row.value, context);
        const sealed = await encryption.cipher.seal(plaintext, context);
        return update(tx, table, field.column, sealed, row);
      },
    });
    reports.push({ table: `${schema}.${metadata.tableName}`, column: field.column, ...report });
  }

  for (const index of fields.indexes) {
    const source = fields.sealed.find((field) => field.plaintext === index.source);
    if (!source) throw new Error(`${index.column} indexes no sealed field`);
    const blindIndex = encryption.blindIndex();
    const report = await inBatches(dataSource, batchSize, {
      select: `SELECT id, "${index.column}" AS value, "${source.column}" AS source FROM ${table}
        WHERE substring("${index.column}" from 1 for 4) < $1`,
      parameters: [versionBytes(blindIndex.currentVersion)],
      reseal: async (row, tx) => {
        const context = sealedFieldContext(schema, metadata.tableName, source.column, row.id);
        const plaintext = await encryption.cipher.openText(row.source!, context);
        return update(tx, table, index.column, blindIndex.digest(index.purpose, plaintext), row);
      },
    });
    reports.push({ table: `${schema}.${metadata.tableName}`, column: index.column, ...report });
  }
  return reports;
}

/** How many rows of a table hold a sealed field (data keys) or index under a key version. */
export interface VersionCount {
  readonly table: string;
  readonly column: string;
  readonly keys: 'data' | 'blind-index';
  readonly version: number;
  readonly rows: number;
}

/** Rows of an entity's table per key version, per sealed or index column. */
export async function versionCounts(
  dataSource: DataSource,
  // eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
  entity: Function,
): Promise<VersionCount[]> {
  const fields = sealedFieldsOf(entity);
  if (!fields) return [];
  const metadata = dataSource.getMetadata(entity);
  const name = `${metadata.schema}.${metadata.tableName}`;
  const counts: VersionCount[] = [];
  const columns = [
    ...fields.sealed.map((field) => ({ column: field.column, from: 2, keys: 'data' as const })),
    ...fields.indexes.map((index) => ({
      column: index.column,
      from: 1,
      keys: 'blind-index' as const,
    })),
  ];
  for (const { column, from, keys } of columns) {
    const rows = await dataSource.query<Array<{ version: Uint8Array; rows: string | number }>>(
      `SELECT substring("${column}" from ${from} for 4) AS version, count(*) AS rows
         FROM "${metadata.schema}"."${metadata.tableName}"
        WHERE "${column}" IS NOT NULL GROUP BY 1 ORDER BY 1`,
    );
    for (const row of rows) {
      counts.push({
        table: name,
        column,
        keys,
        version: BlindIndex.versionOf(row.version),
        rows: Number(row.rows),
      });
    }
  }
  return counts;
}

async function inBatches(
  dataSource: DataSource,
  batchSize: number,
  work: {
    select: string;
    parameters: unknown[];
    reseal: (row: IdAndBytes, tx: EntityManager) => Promise<boolean>;
  },
): Promise<{ updated: number; skipped: number }> {
  let updated = 0;
  let skipped = 0;
  let after = '00000000-0000-0000-0000-000000000000';
  for (;;) {
    const rows = await dataSource.query<IdAndBytes[]>(
      `${work.select} AND id > $${work.parameters.length + 1}
        ORDER BY id LIMIT $${work.parameters.length + 2}`,
      [...work.parameters, after, batchSize],
    );
    if (rows.length === 0) break;
    await dataSource.transaction(async (tx) => {
      for (const row of rows) {
        if (await work.reseal(row, tx)) updated += 1;
        else skipped += 1;
      }
    });
    after = rows[rows.length - 1].id;
  }
  return { updated, skipped };
}

async function update(
  tx: EntityManager | QueryRunner,
  table: string,
  column: string,
  value: Buffer,
  row: IdAndBytes,
): Promise<boolean> {
  const result: unknown = await tx.query(
    `UPDATE ${table} SET "${column}" = $1 WHERE id = $2 AND "${column}" = $3`,
    [value, row.id, Buffer.from(row.value)],
  );
  return affectedRows(result) > 0;
}

/** TypeORM's postgres driver answers an UPDATE with `[rows, count]`. */
function affectedRows(result: unknown): number {
  return Array.isArray(result) && typeof result[1] === 'number' ? result[1] : 0;
}
