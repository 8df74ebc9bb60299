import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';

import { APP_CONFIG, type AppConfig, MESSAGE_GUARDS, type ServiceName } from '@portcullis/core';
import { MessagingModule } from '@portcullis/messaging';

import { AccessGuard } from './access.guard';
import { AccessTokenStrategy } from './access-token.strategy';
import { FixedWindowRateLimitStorage } from './rate-limit-storage';
import { RevocationList } from './revocation-list';
import { RevocationListener } from './revocation.listener';
import { TokenKeyStore } from './token-key-store';
import { VerifiedTokenCache } from './verified-token-cache';

/**
 * Authentication, authorization and rate limits for a process. Every HTTP request passes, in
 * this order, the per-IP rate limit, the deny-by-default {@link AccessGuard} and the per-user
 * rate limit; every message handler passes the {@link AccessGuard}. Requests that reach no
 * Nest route (Swagger, unknown paths) still count against the per-IP limit. `keyRequester` is the
 * hosted service that asks auth for its token keys.
 *
 * `@nestjs/throttler` is loaded when the module is built, not when this library is imported:
 * its CommonJS build cannot be required from ES-module test runs that import the library.
 */
@Module({})
export class SecurityModule {
  static async forRoot(keyRequester: ServiceName): Promise<DynamicModule> {
    const { ThrottlerModule } = await import('@nestjs/throttler');
    const { ActorRateLimitGuard, ClientRateLimitGuard, UnroutedRateLimit, rateLimitOptions } =
      await import('./rate-limit.guard');
    return {
      module: SecurityModule,
      global: true,
      imports: [
        PassportModule,
        MessagingModule.forService(keyRequester),
        ThrottlerModule.forRootAsync({
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) =>
            rateLimitOptions(
              config.rateLimitWindowMs,
              config.rateLimitPerIp,
              config.rateLimitPerUser,
              new FixedWindowRateLimitStorage(),
            ),
        }),
      ],
      providers: [
        TokenKeyStore,
        AccessTokenStrategy,
        {
          provide: VerifiedTokenCache,
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => new VerifiedTokenCache(config.tokenCacheSize),
        },
        {
          provide: RevocationList,
          inject: [VerifiedTokenCache],
          useFactory: (cache: VerifiedTokenCache) => {
            const revocations = new RevocationList();
            revocations.onRevoked((sessionId) => cache.evictSession(sessionId));
            return revocations;
          },
        },
        AccessGuard,
        { provide: APP_GUARD, useClass: ClientRateLimitGuard },
        UnroutedRateLimit,
        { provide: APP_GUARD, useExisting: AccessGuard },
        { provide: APP_GUARD, useClass: ActorRateLimitGuard },
        {
          provide: MESSAGE_GUARDS,
          inject: [AccessGuard],
          useFactory: (guard: AccessGuard) => [guard],
        },
      ],
      controllers: [RevocationListener],
      exports: [TokenKeyStore, VerifiedTokenCache, RevocationList],
    };
  }
}
