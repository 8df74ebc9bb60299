import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataSourceOptions } from 'typeorm';

import type { AppConfig } from '../config/app-config';
import type { ServiceName } from '../config/service-name';
import type { FieldEncryption } from '../encryption/field-encryption';
import { sealedFieldsOf } from '../encryption/sealed-column';
import { sealedFieldsSubscriber } from '../encryption/sealed-fields.subscriber';
import { DatabaseLogger } from './database-logger';
import { SerializedPglitePool } from './pglite-pool';
import { PreparingClient } from './prepared-statements';

// TypeORM lists entity and migration classes as plain constructors.
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type ClassList = Function[];

/** What an app declares about its own tables. */
export interface ServiceSchema {
  readonly service: ServiceName;
  readonly entities: ClassList;
  readonly migrations: ClassList;
  /**
   * Migrations that seal data already stored in plaintext, built with the process's field
   * encryption (TypeORM instantiates migration classes itself, so they are made per process).
   */
  readonly sealingMigrations?: (encryption: FieldEncryption) => ClassList;
}

/** Whether a service's tables hold sealed fields, so that it needs the data keys. */
export function usesFieldEncryption(schema: ServiceSchema): boolean {
  return (
    schema.sealingMigrations !== undefined ||
    schema.entities.some((entity) => sealedFieldsOf(entity) !== undefined)
  );
}

/** Whether a service's tables hold blind indexes, so that it needs the blind-index keys. */
export function usesBlindIndex(schema: ServiceSchema): boolean {
  return schema.entities.some((entity) => (sealedFieldsOf(entity)?.indexes.length ?? 0) > 0);
}

/**
 * Connection options of one service's schema: real PostgreSQL when `DATABASE_URL` is set,
 * otherwise the embedded PGlite database under `DATA_DIR`. Migrations always; never
 * `synchronize`. With `encryption`, sealed fields are sealed and opened by a subscriber.
 */
export function buildDataSourceOptions(
  config: AppConfig,
  schema: ServiceSchema,
  encryption?: FieldEncryption,
): DataSourceOptions {
  if (!encryption && usesFieldEncryption(schema)) {
    throw new Error(`the ${schema.service} schema holds sealed fields: field encryption is needed`);
  }
  const common = {
    type: 'postgres' as const,
    name: schema.service,
    schema: schema.service,
    entities: schema.entities,
    migrations: [
      ...schema.migrations,
      ...(encryption ? (schema.sealingMigrations?.(encryption) ?? []) : []),
    ],
    subscribers: encryption ? [sealedFieldsSubscriber(encryption)] : [],
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: false,
    // Failed statements in the service's log, without their values.
    logger: new DatabaseLogger(),
    applicationName: `portcullis-${schema.service}`,
  };

  if (!config.databaseUrl) {
    return {
      ...common,
      driver: { Pool: SerializedPglitePool },
      extra: { dataDir: join(config.dataDir, 'pglite') },
    };
  }

  return {
    ...common,
    url: config.databaseUrl,
    poolSize: config.databasePoolSize,
    ssl: sslOptions(config),
    // Runs the statements marked with preparedStatement() as prepared statements.
    extra: { Client: PreparingClient },
  };
}

/**
 * `require` encrypts without checking the server's certificate; `verify-full` checks that a
 * trusted CA (`DATABASE_CA_FILE`, else the system's) signed it and that it names the host
 * of `DATABASE_URL` (Node's default identity check, which `pg` keeps for IP addresses too).
 */
function sslOptions(config: AppConfig): false | { rejectUnauthorized: boolean; ca?: string } {
  switch (config.databaseSsl) {
    case 'disable':
      return false;
    case 'require':
      return { rejectUnauthorized: false };
    case 'verify-full':
      return config.databaseCaFile
        ? { rejectUnauthorized: true, ca: readCaFile(config.databaseCaFile) }
        : { rejectUnauthorized: true };
  }
}

function readCaFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new Error(`DATABASE_CA_FILE could not be read: ${path}`);
  }
}
