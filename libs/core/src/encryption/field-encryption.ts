import { Logger, type OnApplicationShutdown } from '@nestjs/common';
import type { EntityManager, EntityTarget, ObjectLiteral } from 'typeorm';

import {
  BlindIndex,
  FieldCipher,
  SECRET_NAMES,
  type SecretsProvider,
  openKeyEncryptionKeys,
} from '@portcullis/crypto';

import type { AppConfig } from '../config/app-config';
import { sealedFieldsOf } from './sealed-column';
import { openRow, sealRow } from './sealed-rows';
import { vaultOptions } from './secret-options';

/**
 * The process's field encryption: the {@link FieldCipher} over the data keys, and the blind
 * index, whose keys are read the first time a service needs them. Both reload their keys
 * every `KEY_RELOAD_SECONDS`, so a version added by a rotation is picked up without a restart;
 * a field sealed under a version this process does not know yet makes it reload at once.
 */
export class FieldEncryption implements OnApplicationShutdown {
  private readonly logger = new Logger(FieldEncryption.name);
  private index?: BlindIndex;
  private timer?: NodeJS.Timeout;

  constructor(
    readonly cipher: FieldCipher,
    private readonly secrets: SecretsProvider,
  ) {}

  /** Opens the data keys (Vault transit or `data-keys.json`); fails naming a missing secret. */
  static async open(config: AppConfig, secrets: SecretsProvider): Promise<FieldEncryption> {
    const keys = await openKeyEncryptionKeys(secrets, vaultOptions(config));
    return new FieldEncryption(new FieldCipher(keys), secrets);
  }

  /** The blind index over `blind-index-keys.json`; throws naming the secret when it is missing. */
  blindIndex(): BlindIndex {
    this.index ??= this.loadBlindIndex();
    return this.index;
  }

  /**
   * The values of a partial update of row `id`, with each plaintext property replaced by its
   * sealed column (and blind index): `update(Entity, { id }, await sealedValues(...))`.
   */
  async sealedValues<T extends ObjectLiteral>(
    manager: EntityManager,
    target: EntityTarget<T>,
    id: string,
    values: Partial<T>,
  ): Promise<Partial<T>> {
    const metadata = manager.connection.getMetadata(target);
    const fields = sealedFieldsOf(metadata.target);
    const row: ObjectLiteral = { ...values };
    metadata.primaryColumns[0].setEntityValue(row, id);
    if (fields) await sealRow(this, metadata, fields, row);
    const plaintexts = new Set(fields?.sealed.map((field) => field.plaintext));
    return Object.fromEntries(
      Object.entries(row).filter(
        ([key]) => !plaintexts.has(key) && key !== metadata.primaryColumns[0].propertyName,
      ),
    ) as Partial<T>;
  }

  /**
   * Opens the sealed columns of an entity read without TypeORM's loading (a raw query mapped
   * by hand) into their plaintext properties, as loading it would. Fails like loading does
   * when a field fails its integrity check.
   */
  async openSealed<T extends ObjectLiteral>(
    manager: EntityManager,
    target: EntityTarget<T>,
    row: T,
  ): Promise<T> {
    const metadata = manager.connection.getMetadata(target);
    const fields = sealedFieldsOf(metadata.target);
    if (fields) await openRow(this, metadata, fields, row);
    return row;
  }

  /** Reloads keys every `intervalMs`; a failed reload keeps the keys already loaded. */
  startReloading(intervalMs: number): void {
    clearInterval(this.timer);
    this.timer = setInterval(() => void this.reload(), intervalMs);
    this.timer.unref();
  }

  async reload(): Promise<void> {
    try {
      await this.secrets.refresh?.();
      await this.cipher.refreshKeys();
      if (this.index) this.index = this.loadBlindIndex();
    } catch (error) {
      this.logger.warn({
        msg: 'keys not reloaded',
        error: error instanceof Error ? error.message : 'unknown',
      });
    }
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  private loadBlindIndex(): BlindIndex {
    return BlindIndex.fromKeyring(
      this.secrets.read(SECRET_NAMES.blindIndexKeys),
      SECRET_NAMES.blindIndexKeys,
    );
  }
}
