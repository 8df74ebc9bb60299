import { createHmac } from 'node:crypto';

import { Keyring } from './keyring';

const VERSION_BYTES = 4;

/**
 * Keyed lookups of encrypted values: HMAC-SHA256 of a value under a versioned key, kept in a
 * unique column so that equal values can be found and kept unique without storing them.
 * Without the key, the column tells nothing about the values (unlike a bare hash, which a
 * dictionary of likely emails reverses). A digest is the key version (4 bytes) and the HMAC.
 *
 * `purpose` separates uses of one key (`auth.accounts.email`, `auth.login_failures`), so a
 * digest made for one purpose is useless for another.
 */
export class BlindIndex {
  private constructor(private readonly keyring: Keyring) {}

  static fromKeyring(text: string, secret: string): BlindIndex {
    return new BlindIndex(Keyring.parse(text, secret));
  }

  /** The key version a digest was made under. */
  static versionOf(digest: Uint8Array): number {
    return Buffer.from(digest.buffer, digest.byteOffset, digest.length).readUInt32BE(0);
  }

  get currentVersion(): number {
    return this.keyring.current;
  }

  get minVersion(): number {
    return this.keyring.minDecryptVersion;
  }

  /** When a version was added; lookups stay correct only once every process has it. */
  versionCreatedAt(version: number): Date | undefined {
    return this.keyring.createdAt(version);
  }

  /** The digest new rows store: under the current version. */
  digest(purpose: string, value: string): Buffer {
    return this.digestUnder(this.keyring.current, purpose, value);
  }

  /**
   * Every digest a stored row may hold for `value`: one per version still in use, newest
   * first. Look rows up with `= ANY(...)` so a rotation in progress finds old and new rows.
   */
  candidates(purpose: string, value: string): Buffer[] {
    return this.keyring
      .activeVersions()
      .map((version) => this.digestUnder(version, purpose, value));
  }

  private digestUnder(version: number, purpose: string, value: string): Buffer {
    const digest = Buffer.allocUnsafe(VERSION_BYTES + 32);
    digest.writeUInt32BE(version, 0);
    createHmac('sha256', this.keyring.key(version)!)
      .update(purpose, 'utf8')
      .update('\0')
      .update(value, 'utf8')
      .digest()
      .copy(digest, VERSION_BYTES);
    return digest;
  }
}
