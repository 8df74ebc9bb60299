import { createCipheriv } from 'node:crypto';

import { FieldCipher, FieldDecryptionError } from './field-cipher';
import { KeyringKeyEncryptionKeys } from './key-encryption-keys';
import {
  type KeyringFile,
  addKeyringVersion,
  createKeyringFile,
  retireKeyringVersions,
} from './keyring';

const NAME = 'data-keys.json';
const ROW = 'auth.accounts.email_sealed:6d0c3a52-3d5e-4b7e-9f43-5a8d3c2a4b11';
const OTHER_ROW = 'auth.accounts.email_sealed:0a9f1d2c-7e44-4e1b-8a55-2b3c4d5e6f70';

/** A keyring secret that a test can rotate, as an operator would rewrite the file. */
class KeyringSecret {
  constructor(public file: KeyringFile = createKeyringFile()) {}
  text = (): string => JSON.stringify(this.file);
}

async function cipherOver(secret: KeyringSecret, maxUses?: number): Promise<FieldCipher> {
  const keys = await KeyringKeyEncryptionKeys.create(() => secret.text(), NAME);
  return new FieldCipher(keys, { maxUsesPerDataKey: maxUses });
}

describe(FieldCipher.name, () => {
  let secret: KeyringSecret;
  let cipher: FieldCipher;

  beforeEach(async () => {
    secret = new KeyringSecret();
    cipher = await cipherOver(secret);
  });

  describe('sealing and opening', () => {
    it('opens what it sealed for the same place', async () => {
      const sealed = await cipher.seal('ada@example.com', ROW);

      expect(sealed.includes(Buffer.from('ada@example.com'))).toBe(false);
      expect(await cipher.openText(sealed, ROW)).toBe('ada@example.com');
      expect(FieldCipher.versionOf(sealed)).toBe(1);
    });

    it('opens empty and multi-byte values', async () => {
      for (const value of ['', 'Zoë Ångström 東京 🎉', 'x'.repeat(10_000)]) {
        expect(await cipher.openText(await cipher.seal(value, ROW), ROW)).toBe(value);
      }
    });

    it('gives two seals of one value different bytes', async () => {
      const first = await cipher.seal('same', ROW);
      const second = await cipher.seal('same', ROW);

      expect(first.equals(second)).toBe(false);
    });

    it('never repeats an IV under one data key', async () => {
      const ivs = new Set<string>();
      for (let i = 0; i < 2000; i += 1) {
        const sealed = await cipher.seal('v', ROW);
        const ivStart = 7 + sealed.readUInt16BE(5);
        ivs.add(sealed.subarray(ivStart, ivStart + 12).toString('hex'));
      }
      expect(ivs.size).toBe(2000);
    });

    it('opens fields sealed by another process holding the same keys', async () => {
      const other = await cipherOver(secret);

      expect(await other.openText(await cipher.seal('shared', ROW), ROW)).toBe('shared');
    });
  });

  describe('binding to the row', () => {
    it('refuses a field moved to another row', async () => {
      const sealed = await cipher.seal('ada@example.com', ROW);

      await expect(cipher.open(sealed, OTHER_ROW)).rejects.toThrow(FieldDecryptionError);
    });

    it('refuses a field moved to another column of the same row', async () => {
      const sealed = await cipher.seal('ref', 'billing.invoices.payment_reference_sealed:1');

      await expect(
        cipher.open(sealed, 'billing.invoices.billing_details_sealed:1'),
      ).rejects.toThrow(FieldDecryptionError);
    });
  });

  describe('with a tampered field', () => {
    it('refuses every single-byte change rather than return garbage', async () => {
      const sealed = await cipher.seal('ada@example.com', ROW);
      for (let index = 0; index < sealed.length; index += 1) {
        const altered = Buffer.from(sealed);
        altered[index] ^= 0x01;
        await expect(cipher.open(altered, ROW)).rejects.toThrow(FieldDecryptionError);
      }
    });

    it('refuses truncated and foreign values', async () => {
      const sealed = await cipher.seal('ada@example.com', ROW);

      await expect(cipher.open(sealed.subarray(0, 20), ROW)).rejects.toThrow(FieldDecryptionError);
      await expect(cipher.open(Buffer.alloc(0), ROW)).rejects.toThrow(FieldDecryptionError);
      await expect(cipher.open(Buffer.from('plaintext'), ROW)).rejects.toThrow(
        FieldDecryptionError,
      );
    });

    it('refuses a field sealed under keys it does not hold', async () => {
      const stranger = await cipherOver(new KeyringSecret());

      await expect(cipher.open(await stranger.seal('x', ROW), ROW)).rejects.toThrow(
        FieldDecryptionError,
      );
    });

    it('refuses a field whose version was relabelled', async () => {
      secret.file = addKeyringVersion(secret.file);
      await cipher.refreshKeys();
      const sealed = await cipher.seal('x', ROW);
      const relabelled = Buffer.from(sealed);
      relabelled.writeUInt32BE(1, 1);

      await expect(cipher.open(relabelled, ROW)).rejects.toThrow(FieldDecryptionError);
    });

    it('refuses a body sealed with the right data key but no associated data', async () => {
      const sealed = await cipher.seal('x', ROW);
      const ivStart = 7 + sealed.readUInt16BE(5);
      const key = await cipher.keys.unwrapDataKey(1, sealed.subarray(7, ivStart));
      const iv = sealed.subarray(ivStart, ivStart + 12);
      const forger = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([forger.update('evil'), forger.final(), forger.getAuthTag()]);
      const forged = Buffer.concat([sealed.subarray(0, ivStart + 12), body]);

      await expect(cipher.open(forged, ROW)).rejects.toThrow(FieldDecryptionError);
    });
  });

  describe('key rotation', () => {
    it('seals under the new version and still opens the old one', async () => {
      const old = await cipher.seal('before', ROW);
      secret.file = addKeyringVersion(secret.file);
      await cipher.refreshKeys();

      const fresh = await cipher.seal('after', ROW);

      expect(FieldCipher.versionOf(old)).toBe(1);
      expect(FieldCipher.versionOf(fresh)).toBe(2);
      expect(cipher.isStale(old)).toBe(true);
      expect(cipher.isStale(fresh)).toBe(false);
      expect(await cipher.openText(old, ROW)).toBe('before');
      expect(await cipher.openText(fresh, ROW)).toBe('after');
    });

    it('learns a version it has not loaded yet when a field needs it', async () => {
      const reader = await cipherOver(secret);
      await reader.seal('warm up', ROW);
      secret.file = addKeyringVersion(secret.file);
      await cipher.refreshKeys();
      await new Promise((resolve) => setTimeout(resolve, 1100));

      expect(await reader.openText(await cipher.seal('new', ROW), ROW)).toBe('new');
      expect(reader.keys.currentVersion()).toBe(2);
    });

    it('refuses fields below the minimum decryption version, even with the key cached', async () => {
      const old = await cipher.seal('before', ROW);
      expect(await cipher.openText(old, ROW)).toBe('before');
      secret.file = retireKeyringVersions(addKeyringVersion(secret.file), 2);
      await cipher.refreshKeys();

      await expect(cipher.open(old, ROW)).rejects.toMatchObject({ reason: 'retired' });
    });

    it('keeps the loaded keys when the secret is unreadable for a moment', async () => {
      const sealed = await cipher.seal('kept', ROW);
      const flaky = new KeyringSecret(secret.file);
      const reader = await cipherOver(flaky);
      flaky.text = () => '{"half';

      await expect(reader.refreshKeys()).rejects.toThrow(NAME);
      expect(await reader.openText(sealed, ROW)).toBe('kept');
    });
  });

  describe('data keys', () => {
    it('makes a new data key after the configured number of fields', async () => {
      const limited = await cipherOver(secret, 2);
      const wrappedKey = (sealed: Buffer) => sealed.subarray(7, 7 + sealed.readUInt16BE(5));

      const a = await limited.seal('1', ROW);
      const b = await limited.seal('2', ROW);
      const c = await limited.seal('3', ROW);

      expect(wrappedKey(a).equals(wrappedKey(b))).toBe(true);
      expect(wrappedKey(b).equals(wrappedKey(c))).toBe(false);
      expect(await limited.openText(a, ROW)).toBe('1');
      expect(await limited.openText(c, ROW)).toBe('3');
    });

    it('makes one data key for many concurrent seals', async () => {
      const sealed = await Promise.all(Array.from({ length: 20 }, () => cipher.seal('x', ROW)));
      const wrapped = new Set(
        sealed.map((s) => s.subarray(7, 7 + s.readUInt16BE(5)).toString('hex')),
      );

      expect(wrapped.size).toBe(1);
    });
  });
});
