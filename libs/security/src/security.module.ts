import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { PassportModule } from '@nestjs/passport';

import type { ServiceName } from '@portcullis/core';
import { MessagingModule } from '@portcullis/messaging';

import { AccessGuard } from './access.guard';
import { AccessTokenStrategy } from './access-token.strategy';
import { TokenKeyStore } from './token-key-store';

/**
 * Authentication and authorization for a process: the global deny-by-default guard and the
 * access-token strategy. `keyRequester` is the hosted service that asks auth for its keys.
 */
@Module({})
export class SecurityModule {
  static forRoot(keyRequester: ServiceName): DynamicModule {
    return {
      module: SecurityModule,
      global: true,
      imports: [PassportModule, MessagingModule.forService(keyRequester)],
      providers: [
        TokenKeyStore,
        AccessTokenStrategy,
        { provide: APP_GUARD, useClass: AccessGuard },
      ],
      exports: [TokenKeyStore],
    };
  }
}
