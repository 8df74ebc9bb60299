import {
  Inject,
  Injectable,
  type OnApplicationShutdown,
  type Provider,
  type Type,
} from '@nestjs/common';
import type { DataSource, DataSourceOptions } from 'typeorm';

import {
  APP_CONFIG,
  type AppConfig,
  HealthRegistry,
  buildDataSourceOptions,
  openServiceDataSource,
} from '@portcullis/core';

import { AuditChain } from './audit-chain';
import { AuditCollector } from './audit-collector';
import { AuditRecordsHandler } from './audit-records.handler';
import { AuditTrailController } from './audit-trail.controller';
import { AUDIT_DATA_SOURCE, AuditTrailService } from './audit-trail.service';
import { CreateAuditTrail1764807000000 } from './migrations/1764807000000-create-audit-trail';

/** Connection options of the `audit` schema: auth's database, its own schema and migrations. */
export function auditDataSourceOptions(config: AppConfig): DataSourceOptions {
  const options = buildDataSourceOptions(config, {
    service: 'auth',
    entities: [],
    migrations: [CreateAuditTrail1764807000000],
  });
  const audit = { name: 'audit', schema: 'audit', applicationName: 'portcullis-audit' };
  return { ...options, ...audit };
}

@Injectable()
class AuditTrailLifecycle implements OnApplicationShutdown {
  constructor(
    @Inject(AUDIT_DATA_SOURCE) private readonly db: DataSource,
    health: HealthRegistry,
  ) {
    health.register('database:audit', async () => {
      await db.query('SELECT 1');
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.db.isInitialized) await this.db.destroy();
  }
}

/**
 * The central audit trail, hosted by auth: auth is the security authority, and the detection
 * rules that observe the trail act on its sessions and accounts. The collector consumes every
 * service's `<service>.audit.recorded` events and appends them to the hash chain in schema
 * `audit`; auditors and admins read and verify it over HTTP.
 */
export const AUDIT_TRAIL_CONTROLLERS: Type[] = [AuditTrailController, AuditRecordsHandler];

export const AUDIT_TRAIL_PROVIDERS: Provider[] = [
  {
    provide: AUDIT_DATA_SOURCE,
    inject: [APP_CONFIG],
    useFactory: (config: AppConfig) => openServiceDataSource(auditDataSourceOptions(config)),
  },
  {
    provide: AuditChain,
    inject: [AUDIT_DATA_SOURCE],
    useFactory: (db: DataSource) => new AuditChain(db),
  },
  AuditCollector,
  AuditTrailService,
  AuditTrailLifecycle,
];
