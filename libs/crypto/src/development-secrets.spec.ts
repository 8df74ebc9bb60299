import { createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import { SECRET_NAMES, ensureDevelopmentSecrets } from './development-secrets';
import type { TrustFile } from './trust-file';
import { serviceKeyId } from './key-ids';
import { Keyring } from './keyring';

const SERVICES = ['auth', 'orders', 'billing'];

describe(ensureDevelopmentSecrets.name, () => {
  let directory: string;

  beforeEach(() => {
    directory = createTempDir('secrets');
  });

  afterEach(() => {
    removeTempDir(directory);
  });

  const read = (name: string): string => readFileSync(join(directory, name), 'utf8');
  const modeOf = (name: string): number => statSync(join(directory, name)).mode & 0o777;

  describe('in an empty directory', () => {
    it('writes a key per service, the token key-encryption key, the keyrings, the metrics scrape token and the trust file', () => {
      const written = ensureDevelopmentSecrets(directory, SERVICES);

      expect(written.sort()).toEqual(
        [
          'services/auth.key',
          'services/orders.key',
          'services/billing.key',
          'token-key-encryption.key',
          'data-keys.json',
          'blind-index-keys.json',
          'metrics.token',
          'trust.json',
        ].sort(),
      );
      expect(read(SECRET_NAMES.metricsToken).trim()).toMatch(/^[A-Za-z0-9_-]{43}$/);
    });

    it('makes each keyring a valid one-version keyring', () => {
      ensureDevelopmentSecrets(directory, SERVICES);

      for (const name of [SECRET_NAMES.dataKeys, SECRET_NAMES.blindIndexKeys]) {
        const keyring = Keyring.parse(read(name), name);
        expect({ current: keyring.current, min: keyring.minDecryptVersion }).toEqual({
          current: 1,
          min: 1,
        });
        expect(keyring.key(1)).toHaveLength(32);
      }
      expect(read(SECRET_NAMES.dataKeys)).not.toBe(read(SECRET_NAMES.blindIndexKeys));
    });

    it('makes every file readable by its owner only', () => {
      const written = ensureDevelopmentSecrets(directory, SERVICES);

      for (const name of written)
        expect({ name, mode: modeOf(name) }).toEqual({ name, mode: 0o600 });
      expect(statSync(join(directory, 'services')).mode & 0o077).toBe(0);
    });

    it('makes Ed25519 service keys and a 32-byte key-encryption key', () => {
      ensureDevelopmentSecrets(directory, SERVICES);

      const serviceKey = createPrivateKey(read(SECRET_NAMES.serviceKey('orders')));
      expect(serviceKey.asymmetricKeyType).toBe('ed25519');
      const encryptionKey = Buffer.from(read(SECRET_NAMES.tokenKeyEncryptionKey).trim(), 'base64');
      expect(encryptionKey).toHaveLength(32);
    });

    it('lists each service public key in the trust file under its key id, as current', () => {
      ensureDevelopmentSecrets(directory, SERVICES);

      const trust = JSON.parse(read(SECRET_NAMES.trust)) as TrustFile;
      expect(trust.version).toBe(2);
      expect(trust.keys.map((entry) => entry.status)).toEqual(SERVICES.map(() => 'current'));
      expect(trust.keys.map((entry) => entry.service)).toEqual(SERVICES);
      for (const entry of trust.keys) {
        const privateKey = createPrivateKey(read(SECRET_NAMES.serviceKey(entry.service)));
        const publicKey = createPublicKey(privateKey);
        expect(entry.kid).toBe(serviceKeyId(entry.service, publicKey));
        expect(entry.publicKey).toBe(
          publicKey.export({ type: 'spki', format: 'der' }).toString('base64'),
        );
      }
    });
  });

  describe('when the secrets already exist', () => {
    it('writes nothing and keeps every key', () => {
      ensureDevelopmentSecrets(directory, SERVICES);
      const names = [
        ...SERVICES.map(SECRET_NAMES.serviceKey),
        'token-key-encryption.key',
        'data-keys.json',
        'blind-index-keys.json',
        'trust.json',
      ];
      const before = names.map(read);

      const written = ensureDevelopmentSecrets(directory, SERVICES);

      expect(written).toEqual([]);
      expect(names.map(read)).toEqual(before);
    });

    it('adds only what a new service needs', () => {
      ensureDevelopmentSecrets(directory, ['auth']);
      const authKey = read(SECRET_NAMES.serviceKey('auth'));

      const written = ensureDevelopmentSecrets(directory, ['auth', 'orders']);

      expect(written).toEqual(['services/orders.key', 'trust.json']);
      expect(read(SECRET_NAMES.serviceKey('auth'))).toBe(authKey);
      const trust = JSON.parse(read(SECRET_NAMES.trust)) as TrustFile;
      expect(trust.keys.map((entry) => entry.service)).toEqual(['auth', 'orders']);
    });
  });
});
