import { Column } from 'typeorm';

/** A column holding a sealed field, and the plain property the code reads and writes. */
export interface SealedFieldSpec {
  /** Entity property of the sealed bytes (a `bytea` column). */
  readonly property: string;
  /** Database column of the sealed bytes. */
  readonly column: string;
  /** Entity property of the plaintext; not a column, never stored. */
  readonly plaintext: string;
  /** `text`: a string; `json`: any JSON value, stored as its text. */
  readonly kind: 'text' | 'json';
}

/** A column holding a blind index (keyed HMAC) of a sealed field's plaintext. */
export interface BlindIndexSpec {
  readonly property: string;
  readonly column: string;
  /** Entity property of the plaintext it indexes. */
  readonly source: string;
  /** Separates this index from every other use of the blind-index keys. */
  readonly purpose: string;
}

export interface SealedFields {
  readonly sealed: readonly SealedFieldSpec[];
  readonly indexes: readonly BlindIndexSpec[];
}

// Classes are what TypeORM hands subscribers as `metadata.target`.
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
const registry = new Map<Function, { sealed: SealedFieldSpec[]; indexes: BlindIndexSpec[] }>();

// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
function entryOf(target: Function): { sealed: SealedFieldSpec[]; indexes: BlindIndexSpec[] } {
  let entry = registry.get(target);
  if (!entry) {
    entry = { sealed: [], indexes: [] };
    registry.set(target, entry);
  }
  return entry;
}

/** The sealed fields and blind indexes an entity class declares, if any. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
export function sealedFieldsOf(target: Function | string): SealedFields | undefined {
  return typeof target === 'string' ? undefined : registry.get(target);
}

/**
 * A `bytea` column holding the sealed form of the `plaintext` property. The field encryption
 * subscriber seals it before insert and update (bound to table, column and row id) and opens
 * it after load, so services only ever see the plaintext property.
 */
export function SealedColumn(options: {
  name: string;
  plaintext: string;
  kind?: 'text' | 'json';
  nullable?: boolean;
}): PropertyDecorator {
  return (target, property) => {
    Column({ name: options.name, type: 'bytea', nullable: options.nullable ?? false })(
      target,
      property,
    );
    entryOf(target.constructor).sealed.push({
      property: String(property),
      column: options.name,
      plaintext: options.plaintext,
      kind: options.kind ?? 'text',
    });
  };
}

/**
 * A `bytea` column holding the blind index of the `source` plaintext property, kept up to
 * date with it on insert and update. Look rows up with `In(blindIndex.candidates(...))`.
 */
export function BlindIndexColumn(options: {
  name: string;
  source: string;
  purpose: string;
  unique?: boolean;
}): PropertyDecorator {
  return (target, property) => {
    Column({ name: options.name, type: 'bytea', unique: options.unique ?? false })(
      target,
      property,
    );
    entryOf(target.constructor).indexes.push({
      property: String(property),
      column: options.name,
      source: options.source,
      purpose: options.purpose,
    });
  };
}

/**
 * The associated data a sealed field is bound to: schema, table, column and row id. A field
 * moved to any other place no longer opens.
 */
export function sealedFieldContext(
  schema: string,
  table: string,
  column: string,
  rowId: string,
): string {
  return `${schema}.${table}.${column}:${rowId}`;
}
