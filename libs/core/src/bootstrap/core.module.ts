import { DynamicModule, Global, Module } from '@nestjs/common';

import { openSecrets } from '@portcullis/crypto';

import type { AppConfig } from '../config/app-config';
import type { ServiceName } from '../config/service-name';
import { APP_CONFIG, HOSTED_SERVICES, SECRETS, SECRET_FILES } from '../config/tokens';
import { secretSourceOptions } from '../encryption/secret-options';
import { HealthController } from '../health/health.controller';
import { HealthRegistry } from '../health/health.registry';

/**
 * Process-wide providers: the validated configuration, the hosted services, their secrets and
 * health.
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig, services: readonly ServiceName[]): DynamicModule {
    return {
      module: CoreModule,
      controllers: [HealthController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: HOSTED_SERVICES, useValue: services },
        { provide: SECRETS, useFactory: () => openSecrets(secretSourceOptions(config)) },
        { provide: SECRET_FILES, useExisting: SECRETS },
        HealthRegistry,
      ],
      exports: [APP_CONFIG, HOSTED_SERVICES, SECRETS, SECRET_FILES, HealthRegistry],
    };
  }
}
