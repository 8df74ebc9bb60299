import { DynamicModule, Inject, Injectable, Module, OnModuleInit } from '@nestjs/common';
import { TypeOrmModule, getDataSourceToken } from '@nestjs/typeorm';
import { DataSource, type DataSourceOptions } from 'typeorm';

import type { AppConfig } from '../config/app-config';
import { APP_CONFIG } from '../config/tokens';
import { FieldEncryption } from '../encryption/field-encryption';
import { FieldEncryptionModule } from '../encryption/field-encryption.module';
import { HealthRegistry } from '../health/health.registry';
import {
  type ServiceSchema,
  buildDataSourceOptions,
  usesBlindIndex,
  usesFieldEncryption,
} from './data-source-options';

/**
 * Opens a service's schema and brings it up to date. Several instances may start at once:
 * on PostgreSQL an advisory lock lets one migrate while the others wait.
 */
export async function openServiceDataSource(options: DataSourceOptions): Promise<DataSource> {
  const schema = (options as { schema?: string }).schema;
  if (!schema || !/^[a-z_]+$/.test(schema)) throw new Error('a service schema name is required');
  const dataSource = new DataSource(options);
  await dataSource.initialize();
  const embedded = 'driver' in options && options.driver !== undefined;
  const runner = embedded ? undefined : dataSource.createQueryRunner();
  const lockKey = `portcullis:migrations:${schema}`;
  try {
    await runner?.query('SELECT pg_advisory_lock(hashtext($1))', [lockKey]);
    await dataSource.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    await dataSource.runMigrations({ transaction: 'each' });
  } finally {
    await runner?.query('SELECT pg_advisory_unlock(hashtext($1))', [lockKey]);
    await runner?.release();
  }
  return dataSource;
}

const SCHEMA_NAME = Symbol('SCHEMA_NAME');

@Injectable()
class DatabaseHealth implements OnModuleInit {
  constructor(
    private readonly registry: HealthRegistry,
    @Inject(SCHEMA_NAME) private readonly service: string,
    @Inject(DataSource) private readonly dataSource: DataSource,
  ) {}

  onModuleInit(): void {
    this.registry.register(`database:${this.service}`, async () => {
      await this.dataSource.query('SELECT 1');
    });
  }
}

/**
 * A service's own DataSource, named after the service, with its migrations run at start-up.
 * A service whose entities hold sealed fields gets {@link FieldEncryption} too; its keys (and
 * the blind-index keys, if the entities have blind indexes) must be present at start-up.
 */
@Module({})
export class DatabaseModule {
  static forService(schema: ServiceSchema): DynamicModule {
    const encrypted = usesFieldEncryption(schema);
    const encryption = encrypted ? [FieldEncryptionModule] : [];
    const typeOrm = TypeOrmModule.forRootAsync({
      name: schema.service,
      imports: encryption,
      inject: encrypted ? [APP_CONFIG, FieldEncryption] : [APP_CONFIG],
      useFactory: (config: AppConfig, fields?: FieldEncryption) => {
        if (fields && usesBlindIndex(schema)) fields.blindIndex();
        return buildDataSourceOptions(config, schema, fields);
      },
      dataSourceFactory: async (options) => {
        if (!options) throw new Error('no data source options');
        return openServiceDataSource(options);
      },
    });
    const feature = TypeOrmModule.forFeature(schema.entities as never[], schema.service);
    return {
      module: DatabaseModule,
      imports: [typeOrm, feature, ...encryption],
      providers: [
        { provide: SCHEMA_NAME, useValue: schema.service },
        {
          provide: DataSource,
          inject: [getDataSourceToken(schema.service)],
          useFactory: (dataSource: DataSource) => dataSource,
        },
        DatabaseHealth,
      ],
      exports: [feature, DataSource, ...encryption],
    };
  }
}
