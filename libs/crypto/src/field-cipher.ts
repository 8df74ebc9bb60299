import {
  type KeyObject,
  createCipheriv,
  createDecipheriv,
  createSecretKey,
  randomBytes,
} from 'node:crypto';

import { DataKeyError, type KeyEncryptionKeys } from './key-encryption-keys';

/** First byte of every sealed field; a new layout gets a new number. */
export const SEALED_FIELD_FORMAT = 1;

const HEADER_BYTES = 7; // format (1) | KEK version (4) | wrapped data key length (2)
const IV_BYTES = 12;
const TAG_BYTES = 16;
const REFRESH_INTERVAL_MS = 1000;

/** Raised when a sealed field does not open: altered, moved to another row, or retired. */
export class FieldDecryptionError extends Error {
  constructor(readonly reason: 'malformed' | 'retired' | 'unwrap' | 'authentication') {
    super(`sealed field could not be opened (${reason})`);
    this.name = 'FieldDecryptionError';
  }
}

export interface FieldCipherOptions {
  /** Fields one data key seals before the next is made (default 2^24). */
  readonly maxUsesPerDataKey?: number;
  /** Unwrapped data keys remembered for opening (default 4096). */
  readonly cacheSize?: number;
}

interface ActiveDataKey {
  readonly version: number;
  readonly key: KeyObject;
  /** The header every field sealed under this key starts with. */
  readonly header: Buffer;
  /** The fixed part of the IV: 4 random bytes; the other 8 count the fields sealed. */
  readonly ivPrefix: Buffer;
  uses: number;
}

/**
 * Envelope encryption of single fields with AES-256-GCM.
 *
 * Each process makes its own random data key, wraps it with the current key-encryption key
 * (KEK) and seals fields under it, with an IV made of a random prefix and a counter, so no IV
 * repeats under a key. A sealed field carries the KEK version and the wrapped data key:
 *
 *     format (1) | KEK version (4) | length (2) | wrapped data key | IV (12)
 *     | ciphertext | tag (16)
 *
 * so any process holding that KEK version opens it, and old fields stay readable after a
 * rotation. The associated data (`context`: table, column and row id) binds a field to its
 * place, so a ciphertext copied to another row or column does not open. Unwrapped data keys
 * are cached, so the cost per field is one AES-GCM operation.
 */
export class FieldCipher {
  private active?: ActiveDataKey;
  private pending?: Promise<ActiveDataKey>;
  private readonly opened = new Map<string, KeyObject>();
  private readonly maxUses: number;
  private readonly cacheSize: number;
  private lastRefresh = 0;
  private refreshing?: Promise<void>;

  constructor(
    readonly keys: KeyEncryptionKeys,
    options: FieldCipherOptions = {},
  ) {
    this.maxUses = options.maxUsesPerDataKey ?? 2 ** 24;
    this.cacheSize = options.cacheSize ?? 4096;
  }

  /** The KEK version a sealed field was made under. */
  static versionOf(sealed: Uint8Array): number {
    const buffer = asBuffer(sealed);
    if (buffer.length < HEADER_BYTES || buffer[0] !== SEALED_FIELD_FORMAT) {
      throw new FieldDecryptionError('malformed');
    }
    return buffer.readUInt32BE(1);
  }

  /** Seals a field for the place `context` names (e.g. `auth.accounts.email_sealed:<id>`). */
  async seal(plaintext: Buffer | string, context: string): Promise<Buffer> {
    const dataKey = this.usableDataKey() ?? (await this.nextDataKey());
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    const header = dataKey.header;
    const ivStart = header.length;
    const bodyStart = ivStart + IV_BYTES;
    const sealed = Buffer.allocUnsafe(bodyStart + data.length + TAG_BYTES);
    header.copy(sealed, 0);
    dataKey.ivPrefix.copy(sealed, ivStart);
    const count = dataKey.uses++;
    sealed.writeUInt32BE(Math.floor(count / 0x1_0000_0000), ivStart + 4);
    sealed.writeUInt32BE(count >>> 0, ivStart + 8);

    const cipher = createCipheriv('aes-256-gcm', dataKey.key, sealed.subarray(ivStart, bodyStart));
    cipher.setAAD(Buffer.from(context, 'utf8'));
    cipher.update(data).copy(sealed, bodyStart);
    cipher.final();
    cipher.getAuthTag().copy(sealed, bodyStart + data.length);
    return sealed;
  }

  /** Opens a sealed field; throws {@link FieldDecryptionError} rather than return garbage. */
  async open(sealed: Uint8Array, context: string): Promise<Buffer> {
    const buffer = asBuffer(sealed);
    const key = this.cachedKey(buffer) ?? (await this.fetchKey(buffer));
    return decrypt(key, buffer, context);
  }

  /** {@link open} for a UTF-8 text field. */
  async openText(sealed: Uint8Array, context: string): Promise<string> {
    const buffer = asBuffer(sealed);
    const key = this.cachedKey(buffer) ?? (await this.fetchKey(buffer));
    return decrypt(key, buffer, context).toString('utf8');
  }

  /** True when a sealed field was made under an older KEK version than the current one. */
  isStale(sealed: Uint8Array): boolean {
    return FieldCipher.versionOf(sealed) < this.keys.currentVersion();
  }

  /**
   * Reloads the KEKs (at most once a second however often it is asked), then forgets cached
   * data keys of retired versions; the next seal uses a data key under the current version.
   */
  async refreshKeys(): Promise<void> {
    if (this.refreshing) return this.refreshing;
    if (Date.now() - this.lastRefresh < REFRESH_INTERVAL_MS) return;
    this.lastRefresh = Date.now();
    this.refreshing = this.keys
      .refresh()
      .then(() => this.forgetRetired())
      .finally(() => {
        this.refreshing = undefined;
      });
    return this.refreshing;
  }

  private forgetRetired(): void {
    const min = this.keys.minDecryptVersion();
    for (const cacheKey of this.opened.keys()) {
      if (Number(cacheKey.slice(0, cacheKey.indexOf(':'))) < min) this.opened.delete(cacheKey);
    }
  }

  /**
   * The data key of a well-formed field whose version may still decrypt, when it is at hand:
   * the key this process seals with (compared byte for byte with its header), or a cached one.
   */
  private cachedKey(buffer: Buffer): KeyObject | undefined {
    const ivStart = checkLayout(buffer);
    const version = buffer.readUInt32BE(1);
    if (version < this.keys.minDecryptVersion()) throw new FieldDecryptionError('retired');
    const active = this.active;
    if (active?.header.length === ivStart && active.header.compare(buffer, 0, ivStart) === 0) {
      return active.key;
    }
    return this.opened.get(`${version}:${buffer.toString('latin1', HEADER_BYTES, ivStart)}`);
  }

  /** Unwraps a field's data key, after loading the KEKs again if its version is newer. */
  private async fetchKey(buffer: Buffer): Promise<KeyObject> {
    const ivStart = checkLayout(buffer);
    const version = buffer.readUInt32BE(1);
    if (version > this.keys.currentVersion()) await this.refreshKeys();
    if (version < this.keys.minDecryptVersion()) throw new FieldDecryptionError('retired');
    const wrapped = buffer.subarray(HEADER_BYTES, ivStart);
    return this.unwrap(version, wrapped, `${version}:${wrapped.toString('latin1')}`);
  }

  private usableDataKey(): ActiveDataKey | undefined {
    const active = this.active;
    return active && active.uses < this.maxUses && active.version === this.keys.currentVersion()
      ? active
      : undefined;
  }

  /** One new data key at a time, however many seals are waiting for it. */
  private nextDataKey(): Promise<ActiveDataKey> {
    this.pending ??= this.keys
      .generateDataKey()
      .then((dataKey) => {
        if (dataKey.wrapped.length > 0xffff) throw new Error('wrapped data key is too long');
        const header = Buffer.allocUnsafe(HEADER_BYTES + dataKey.wrapped.length);
        header[0] = SEALED_FIELD_FORMAT;
        header.writeUInt32BE(dataKey.version, 1);
        header.writeUInt16BE(dataKey.wrapped.length, 5);
        dataKey.wrapped.copy(header, HEADER_BYTES);
        const key = secretKey(dataKey.plaintext);
        this.remember(`${dataKey.version}:${dataKey.wrapped.toString('latin1')}`, key);
        this.active = {
          version: dataKey.version,
          key,
          header,
          ivPrefix: randomBytes(4),
          uses: 0,
        };
        return this.active;
      })
      .finally(() => {
        this.pending = undefined;
      });
    return this.pending;
  }

  private async unwrap(version: number, wrapped: Buffer, cacheKey: string): Promise<KeyObject> {
    let key: KeyObject;
    try {
      key = secretKey(await this.keys.unwrapDataKey(version, wrapped));
    } catch (error) {
      // An unreachable key service is not a broken field: that error goes up as it is.
      if (error instanceof DataKeyError) throw new FieldDecryptionError('unwrap');
      throw error;
    }
    this.remember(cacheKey, key);
    return key;
  }

  private remember(cacheKey: string, key: KeyObject): void {
    if (this.opened.size >= this.cacheSize) {
      const oldest = this.opened.keys().next();
      if (!oldest.done) this.opened.delete(oldest.value);
    }
    this.opened.set(cacheKey, key);
  }
}

/** Checks the layout of a sealed field; returns where its IV starts. */
function checkLayout(buffer: Buffer): number {
  if (buffer.length < HEADER_BYTES || buffer[0] !== SEALED_FIELD_FORMAT) {
    throw new FieldDecryptionError('malformed');
  }
  const ivStart = HEADER_BYTES + buffer.readUInt16BE(5);
  if (buffer.length < ivStart + IV_BYTES + TAG_BYTES) throw new FieldDecryptionError('malformed');
  return ivStart;
}

/** AES-256-GCM decryption of a well-formed sealed field under its data key. */
function decrypt(key: KeyObject, buffer: Buffer, context: string): Buffer {
  const ivStart = HEADER_BYTES + buffer.readUInt16BE(5);
  const bodyStart = ivStart + IV_BYTES;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, buffer.subarray(ivStart, bodyStart));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(buffer.subarray(buffer.length - TAG_BYTES));
    const plaintext = decipher.update(buffer.subarray(bodyStart, buffer.length - TAG_BYTES));
    decipher.final();
    return plaintext;
  } catch {
    throw new FieldDecryptionError('authentication');
  }
}

/** A data key as a KeyObject; the plaintext bytes it was made from are zeroed. */
function secretKey(plaintext: Buffer): KeyObject {
  const key = createSecretKey(plaintext);
  plaintext.fill(0);
  return key;
}

function asBuffer(value: Uint8Array): Buffer {
  return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.length);
}
