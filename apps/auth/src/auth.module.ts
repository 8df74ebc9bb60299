import { Module } from '@nestjs/common';

import { DatabaseModule } from '@portcullis/core';
import {
  InboxRecord,
  MessagingModule,
  OutboxRecord,
  messagingTablesMigration,
} from '@portcullis/messaging';

import { Account } from './accounts/account.entity';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { LoginLimiter } from './accounts/login-limiter';
import { PasswordHasher } from './accounts/password-hasher';
import { UsersController } from './accounts/users.controller';
import { DetectionModule } from './detection/detection.module';
import { KeysController } from './keys/keys.controller';
import { SigningKey } from './keys/signing-key.entity';
import { SigningKeys } from './keys/signing-keys';
import { CreateAccounts1764806400000 } from './migrations/1764806400000-create-accounts';
import { KeysAndLoginLimits1764806400001 } from './migrations/1764806400001-keys-and-login-limits';
import { sealAccountEmails } from './migrations/1764806800000-seal-account-emails';
import { RefreshToken } from './tokens/refresh-token.entity';
import { Session } from './tokens/session.entity';
import { SessionsService } from './tokens/sessions.service';
import { TokenIssuer } from './tokens/token-issuer';

/** The identity provider: accounts, sessions, tokens and the keys that sign them. */
@Module({
  imports: [
    DatabaseModule.forService({
      service: 'auth',
      entities: [Account, Session, RefreshToken, SigningKey, OutboxRecord, InboxRecord],
      migrations: [
        CreateAccounts1764806400000,
        KeysAndLoginLimits1764806400001,
        messagingTablesMigration('auth'),
      ],
      sealingMigrations: (encryption) => [sealAccountEmails(encryption)],
    }),
    MessagingModule.forService('auth'),
    DetectionModule,
  ],
  controllers: [AccountsController, UsersController, KeysController],
  providers: [
    AccountsService,
    LoginLimiter,
    PasswordHasher,
    SessionsService,
    SigningKeys,
    TokenIssuer,
  ],
})
export class AuthModule {}
