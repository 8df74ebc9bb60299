import { Module } from '@nestjs/common';

import { DatabaseModule } from '@portcullis/core';
import {
  InboxRecord,
  MessagingModule,
  OutboxRecord,
  messagingTablesMigration,
  outboxPublishedRowsMigration,
  outboxTraceContextMigration,
} from '@portcullis/messaging';

import { Account } from './accounts/account.entity';
import { AccountsController } from './accounts/accounts.controller';
import { AccountsService } from './accounts/accounts.service';
import { LoginLimiter } from './accounts/login-limiter';
import { PasswordHasher } from './accounts/password-hasher';
import { UsersController } from './accounts/users.controller';
import {
  AUDIT_TRAIL_CONTROLLERS,
  AUDIT_TRAIL_PROVIDERS,
} from './audit-trail/audit-trail.providers';
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

/**
 * The identity provider: accounts, sessions, tokens and the keys that sign them; and the host
 * of the central audit trail (see `audit-trail/`).
 */
@Module({
  imports: [
    DatabaseModule.forService({
      service: 'auth',
      entities: [Account, Session, RefreshToken, SigningKey, OutboxRecord, InboxRecord],
      migrations: [
        CreateAccounts1764806400000,
        KeysAndLoginLimits1764806400001,
        messagingTablesMigration('auth'),
        outboxTraceContextMigration('auth'),
        outboxPublishedRowsMigration('auth'),
      ],
      sealingMigrations: (encryption) => [sealAccountEmails(encryption)],
    }),
    MessagingModule.forService('auth'),
    DetectionModule,
  ],
  controllers: [AccountsController, UsersController, KeysController, ...AUDIT_TRAIL_CONTROLLERS],
  providers: [
    AccountsService,
    LoginLimiter,
    PasswordHasher,
    SessionsService,
    SigningKeys,
    TokenIssuer,
    ...AUDIT_TRAIL_PROVIDERS,
  ],
})
export class AuthModule {}
