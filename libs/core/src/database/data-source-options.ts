import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DataSourceOptions } from 'typeorm';

import type { AppConfig } from '../config/app-config';
import type { ServiceName } from '../config/service-name';
import { SerializedPglitePool } from './pglite-pool';

// TypeORM lists entity and migration classes as plain constructors.
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type
type ClassList = Function[];

/** What an app declares about its own tables. */
export interface ServiceSchema {
  readonly service: ServiceName;
  readonly entities: ClassList;
  readonly migrations: ClassList;
}

/**
 * Connection options of one service's schema: real PostgreSQL when `DATABASE_URL` is set,
 * otherwise the embedded PGlite database under `DATA_DIR`. Migrations always; never
 * `synchronize`.
 */
export function buildDataSourceOptions(
  config: AppConfig,
  schema: ServiceSchema,
): DataSourceOptions {
  const common = {
    type: 'postgres' as const,
    name: schema.service,
    schema: schema.service,
    entities: schema.entities,
    migrations: schema.migrations,
    migrationsTableName: 'migrations',
    migrationsRun: false,
    synchronize: false,
    logging: ['error' as const],
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
