import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

import { Keyring } from './keyring';

/** A fresh data key: its plaintext for this process, and its form wrapped by a versioned KEK. */
export interface DataKey {
  readonly version: number;
  readonly plaintext: Buffer;
  readonly wrapped: Buffer;
}

/** Raised when a wrapped data key cannot be unwrapped: altered, retired, or an unknown version. */
export class DataKeyError extends Error {
  constructor(reason: string) {
    super(`data key could not be unwrapped: ${reason}`);
    this.name = 'DataKeyError';
  }
}

/**
 * Versioned key-encryption keys (KEKs) that wrap data keys, as Vault transit does: new data
 * keys are wrapped by the current version; any version from `minDecryptVersion` on unwraps.
 */
export interface KeyEncryptionKeys {
  /** Shown in logs: where the KEKs live (`secrets` or `vault-transit`). */
  readonly kind: string;
  currentVersion(): number;
  minDecryptVersion(): number;
  /** When a version was created, if known; used to wait until every process has it. */
  versionCreatedAt(version: number): Date | undefined;
  /** A new random 256-bit data key, wrapped by the current version. */
  generateDataKey(): Promise<DataKey>;
  unwrapDataKey(version: number, wrapped: Buffer): Promise<Buffer>;
  /** Reloads versions from their source (a rotated secret, Vault). */
  refresh(): Promise<void>;
}

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * KEKs from a keyring secret (`data-keys.json`), wrapping data keys with AES-256-GCM. The
 * associated data names the version, so a wrapped key relabelled with another version fails.
 */
export class KeyringKeyEncryptionKeys implements KeyEncryptionKeys {
  readonly kind = 'secrets';
  private keyring: Keyring;

  /** `load` returns the keyring's current text; it is called again on every refresh. */
  constructor(
    private readonly load: () => string | Promise<string>,
    private readonly secret: string,
    initial: string,
  ) {
    this.keyring = Keyring.parse(initial, secret);
  }

  static async create(
    load: () => string | Promise<string>,
    secret: string,
  ): Promise<KeyringKeyEncryptionKeys> {
    return new KeyringKeyEncryptionKeys(load, secret, await load());
  }

  currentVersion(): number {
    return this.keyring.current;
  }

  minDecryptVersion(): number {
    return this.keyring.minDecryptVersion;
  }

  versionCreatedAt(version: number): Date | undefined {
    return this.keyring.createdAt(version);
  }

  generateDataKey(): Promise<DataKey> {
    const version = this.keyring.current;
    const kek = this.keyring.key(version)!;
    const plaintext = randomBytes(32);
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', kek, iv);
    cipher.setAAD(wrapContext(version));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const wrapped = Buffer.concat([iv, body, cipher.getAuthTag()]);
    return Promise.resolve({ version, plaintext, wrapped });
  }

  unwrapDataKey(version: number, wrapped: Buffer): Promise<Buffer> {
    const kek = this.keyring.key(version);
    if (!kek) return Promise.reject(new DataKeyError(`version ${version} is not available`));
    if (wrapped.length !== IV_BYTES + 32 + TAG_BYTES) {
      return Promise.reject(new DataKeyError('malformed'));
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', kek, wrapped.subarray(0, IV_BYTES));
      decipher.setAAD(wrapContext(version));
      decipher.setAuthTag(wrapped.subarray(wrapped.length - TAG_BYTES));
      const body = wrapped.subarray(IV_BYTES, wrapped.length - TAG_BYTES);
      return Promise.resolve(Buffer.concat([decipher.update(body), decipher.final()]));
    } catch {
      return Promise.reject(new DataKeyError('authentication failed'));
    }
  }

  async refresh(): Promise<void> {
    this.keyring = Keyring.parse(await this.load(), this.secret);
  }
}

function wrapContext(version: number): Buffer {
  return Buffer.from(`portcullis:data-key:v${version}`, 'utf8');
}
