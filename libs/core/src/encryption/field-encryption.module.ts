import { Module } from '@nestjs/common';

import type { SecretsProvider } from '@portcullis/crypto';

import type { AppConfig } from '../config/app-config';
import { APP_CONFIG, SECRETS } from '../config/tokens';
import { FieldEncryption } from './field-encryption';

/**
 * One {@link FieldEncryption} per process, for the services whose tables hold sealed fields.
 * Imported by `DatabaseModule.forService` for those services only, so a process that stores
 * nothing encrypted needs no data keys.
 */
@Module({
  providers: [
    {
      provide: FieldEncryption,
      inject: [APP_CONFIG, SECRETS],
      useFactory: async (config: AppConfig, secrets: SecretsProvider) => {
        const encryption = await FieldEncryption.open(config, secrets);
        encryption.startReloading(config.keyReloadSeconds * 1000);
        return encryption;
      },
    },
  ],
  exports: [FieldEncryption],
})
export class FieldEncryptionModule {}
