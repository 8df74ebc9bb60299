import type { DataSource } from 'typeorm';

import {
  type ServiceSchema,
  buildDataSourceOptions,
  closeEmbeddedDatabases,
  loadConfig,
  openServiceDataSource,
} from '@portcullis/core';

import { createTempDir, removeTempDir } from './temp-dir';

/** A service's schema, migrated, on an embedded database of its own. */
export interface EmbeddedDatabase {
  readonly db: DataSource;
  /** Closes the database and removes its directory. */
  close(): Promise<void>;
}

/**
 * Opens `schema` on a fresh embedded database in a temp dir named after `label`, for one
 * spec file (open it in `beforeAll`, close it in `afterAll`).
 */
export async function openEmbeddedDatabase(
  label: string,
  schema: ServiceSchema,
): Promise<EmbeddedDatabase> {
  const directory = createTempDir(label);
  const removeAll = async () => {
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  };
  let db: DataSource;
  try {
    db = await openServiceDataSource(
      buildDataSourceOptions(loadConfig({ DATA_DIR: directory }), schema),
    );
  } catch (error) {
    await removeAll();
    throw error;
  }
  return {
    db,
    close: async () => {
      await db.destroy();
      await removeAll();
    },
  };
}
