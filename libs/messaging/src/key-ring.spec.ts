import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { SERVICE_NAMES } from '@portcullis/core';
import {
  SECRET_NAMES,
  SecretFiles,
  type TrustFile,
  ensureDevelopmentSecrets,
} from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import { KeyRing } from './key-ring';

describe(KeyRing.name, () => {
  let directory: string;
  let secrets: SecretFiles;

  beforeEach(() => {
    directory = createTempDir('key-ring');
    ensureDevelopmentSecrets(directory, SERVICE_NAMES);
    secrets = new SecretFiles(directory);
  });

  afterEach(() => {
    removeTempDir(directory);
  });

  const trustFile = (): TrustFile => JSON.parse(secrets.read(SECRET_NAMES.trust)) as TrustFile;
  const writeTrust = (trust: TrustFile): void =>
    writeFileSync(join(directory, SECRET_NAMES.trust), JSON.stringify(trust));

  describe('loaded for the orders service', () => {
    it('signs as orders only', () => {
      const ring = KeyRing.load(secrets, ['orders']);

      expect(ring.signerFor('orders').kid).toMatch(/^orders-[0-9a-f]{16}$/);
      expect(() => ring.signerFor('billing')).toThrow('holds no signing key for billing');
    });

    it('trusts every service in the trust file', () => {
      const ring = KeyRing.load(secrets, ['orders']);

      for (const entry of trustFile().keys) {
        expect(ring.trustedKey(entry.kid)).toMatchObject({
          kid: entry.kid,
          service: entry.service,
        });
      }
    });

    it.each(['orders', '../orders', '__proto__', 'orders-0000000000000000', ''])(
      'knows no key %p',
      (kid) => {
        expect(KeyRing.load(secrets, ['orders']).trustedKey(kid)).toBeUndefined();
      },
    );
  });

  describe('with a trust file that cannot be trusted', () => {
    it('refuses an entry whose kid does not match its public key', () => {
      const trust = trustFile();
      trust.keys[1] = { ...trust.keys[1], publicKey: trust.keys[0].publicKey };
      writeTrust(trust);

      expect(() => KeyRing.load(secrets, ['orders'])).toThrow('does not match its public key');
    });

    it('refuses an entry for an unknown service', () => {
      const trust = trustFile();
      trust.keys[0] = { ...trust.keys[0], service: 'payments' };
      writeTrust(trust);

      expect(() => KeyRing.load(secrets, ['orders'])).toThrow('unknown service');
    });

    it('refuses a key that is not Ed25519', () => {
      const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const trust = trustFile();
      const der = publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
      trust.keys[0] = { ...trust.keys[0], publicKey: der };
      writeTrust(trust);

      expect(() => KeyRing.load(secrets, ['orders'])).toThrow('is not an Ed25519 key');
    });

    it('refuses a signing key that the trust file does not list', () => {
      const trust = trustFile();
      writeTrust({ ...trust, keys: trust.keys.filter((entry) => entry.service !== 'orders') });

      expect(() => KeyRing.load(secrets, ['orders'])).toThrow('is not in the trust file');
    });
  });
});
