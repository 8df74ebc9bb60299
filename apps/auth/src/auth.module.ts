import { Module } from '@nestjs/common';

import { DatabaseModule } from '@portcullis/core';
import { MessagingModule } from '@portcullis/messaging';

import { Account } from './accounts/account.entity';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { PasswordHasher } from './accounts/password-hasher';
import { KeysController } from './keys/keys.controller';
import { SigningKeys } from './keys/signing-keys';
import { CreateAccounts1764806400000 } from './migrations/1764806400000-create-accounts';
import { RefreshToken } from './tokens/refresh-token.entity';
import { Session } from './tokens/session.entity';
import { TokenIssuer } from './tokens/token-issuer';

/** The identity provider: accounts, sessions, tokens and the keys that sign them. */
@Module({
  imports: [
    DatabaseModule.forService({
      service: 'auth',
      entities: [Account, Session, RefreshToken],
      migrations: [CreateAccounts1764806400000],
    }),
    MessagingModule.forService('auth'),
  ],
  controllers: [AccountsController, KeysController],
  providers: [AccountsService, PasswordHasher, SigningKeys, TokenIssuer],
})
export class AuthModule {}
