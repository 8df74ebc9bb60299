import { Logger } from '@nestjs/common';
import type { EntityMetadata, ObjectLiteral } from 'typeorm';

import { FieldDecryptionError } from '@portcullis/crypto';

import type { FieldEncryption } from './field-encryption';
import { type SealedFields, sealedFieldContext } from './sealed-column';

/** Raised when a stored field does not open: the row's data was altered or moved. */
export class SealedFieldError extends Error {
  constructor() {
    super('a stored field failed its integrity check');
    this.name = 'SealedFieldError';
  }
}

const logger = new Logger('SealedFields');

/** Plaintexts as they were last opened or sealed, so an unchanged field is not sealed again. */
const known = new WeakMap<object, Map<string, string>>();

/**
 * Seals the plaintext properties a row sets (`undefined` ones are left alone) into their
 * sealed columns, bound to the row's id, and recomputes the blind indexes of changed values.
 */
export async function sealRow(
  encryption: FieldEncryption,
  metadata: EntityMetadata,
  fields: SealedFields,
  row: ObjectLiteral,
): Promise<void> {
  const changed = fields.sealed.filter((field) => row[field.plaintext] !== undefined);
  if (changed.length === 0) return;
  const id = rowId(metadata, row);
  if (id === undefined) {
    throw new Error(
      `${metadata.tableName}: sealed fields are written with insert(), save() or sealedValues()`,
    );
  }
  const remembered = known.get(row) ?? new Map<string, string>();
  for (const field of changed) {
    const value: unknown = row[field.plaintext];
    const text = value === null ? null : serialize(field.kind, value);
    if (remembered.has(field.plaintext) && remembered.get(field.plaintext) === text) continue;
    const context = sealedFieldContext(metadata.schema!, metadata.tableName, field.column, id);
    row[field.property] = text === null ? null : await encryption.cipher.seal(text, context);
    for (const index of fields.indexes.filter((entry) => entry.source === field.plaintext)) {
      row[index.property] =
        typeof value === 'string' ? encryption.blindIndex().digest(index.purpose, value) : null;
    }
    if (text !== null) remembered.set(field.plaintext, text);
  }
  known.set(row, remembered);
}

/**
 * Opens a loaded row's sealed columns into their plaintext properties. A field that fails
 * its check is logged (table, column, row id) and raised as {@link SealedFieldError}.
 */
export async function openRow(
  encryption: FieldEncryption,
  metadata: EntityMetadata,
  fields: SealedFields,
  row: ObjectLiteral,
): Promise<void> {
  const id = rowId(metadata, row);
  const remembered = new Map<string, string>();
  for (const field of fields.sealed) {
    const sealed: unknown = row[field.property];
    if (sealed === undefined) continue;
    if (sealed === null) {
      row[field.plaintext] = null;
      continue;
    }
    const context = sealedFieldContext(metadata.schema!, metadata.tableName, field.column, id!);
    let text: string;
    try {
      text = await encryption.cipher.openText(sealed as Uint8Array, context);
    } catch (error) {
      if (!(error instanceof FieldDecryptionError)) throw error;
      logger.error({
        msg: 'stored field failed its integrity check',
        table: `${metadata.schema}.${metadata.tableName}`,
        column: field.column,
        rowId: id,
        reason: error.reason,
      });
      throw new SealedFieldError();
    }
    row[field.plaintext] = field.kind === 'json' ? (JSON.parse(text) as unknown) : text;
    remembered.set(field.plaintext, text);
  }
  known.set(row, remembered);
}

function rowId(metadata: EntityMetadata, row: ObjectLiteral): string | undefined {
  const value: unknown = metadata.primaryColumns[0]?.getEntityValue(row);
  return typeof value === 'string' ? value : undefined;
}

function serialize(kind: 'text' | 'json', value: unknown): string {
  if (kind === 'json') return JSON.stringify(value);
  if (typeof value !== 'string') throw new TypeError('a text field must hold a string');
  return value;
}
