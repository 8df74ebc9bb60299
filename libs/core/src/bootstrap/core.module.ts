import { DynamicModule, Global, Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';

import { openSecrets } from '@portcullis/crypto';

import type { AppConfig } from '../config/app-config';
import type { ServiceName } from '../config/service-name';
import { APP_CONFIG, HOSTED_SERVICES, SECRETS, SECRET_FILES } from '../config/tokens';
import { secretSourceOptions } from '../encryption/secret-options';
import { HealthController } from '../health/health.controller';
import { HealthRegistry } from '../health/health.registry';
import { MetricsController } from '../metrics/metrics.controller';
import { ScrapeToken } from '../metrics/scrape-token';

/**
 * Process-wide providers: the validated configuration, the hosted services, their secrets,
 * health (`/health`, `/health/live`, `/health/ready`) and metrics (`/metrics`).
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: AppConfig, services: readonly ServiceName[]): DynamicModule {
    return {
      module: CoreModule,
      // Terminus logs nothing itself: a failed readiness check answers 503 naming what is down.
      imports: [TerminusModule.forRoot({ logger: false })],
      controllers: [HealthController, MetricsController],
      providers: [
        { provide: APP_CONFIG, useValue: config },
        { provide: HOSTED_SERVICES, useValue: services },
        { provide: SECRETS, useFactory: () => openSecrets(secretSourceOptions(config)) },
        { provide: SECRET_FILES, useExisting: SECRETS },
        HealthRegistry,
        ScrapeToken,
      ],
      exports: [APP_CONFIG, HOSTED_SERVICES, SECRETS, SECRET_FILES, HealthRegistry, ScrapeToken],
    };
  }
}
