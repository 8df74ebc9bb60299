import { generateKeyPairSync } from 'node:crypto';
import { jest } from '@jest/globals';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { SERVICE_NAMES } from '@portcullis/core';
import {
  SECRET_NAMES,
  SecretFiles,
  type TrustFile,
  ensureDevelopmentSecrets,
  retireServiceKey,
  rotateServiceKey,
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

  describe('while a service key rotates', () => {
    it('trusts the new key and the previous one after a reload, and drops the retired one', () => {
      const ring = KeyRing.load(secrets, ['billing']);
      const change = rotateServiceKey(directory, 'orders', SERVICE_NAMES);

      expect(ring.reload()).toBe(true);
      expect(ring.trustedKey(change.current)).toMatchObject({
        service: 'orders',
        status: 'current',
      });
      expect(ring.trustedKey(change.previous!)).toMatchObject({
        service: 'orders',
        status: 'previous',
      });

      retireServiceKey(directory, 'orders', SERVICE_NAMES);
      ring.reload();

      expect(ring.trustedKey(change.previous!)).toBeUndefined();
      expect(ring.trustedKey(change.current)).toBeDefined();
    });

    it('reads the trust file again when a message names a kid it does not know', () => {
      jest.useFakeTimers({ now: Date.now() });
      try {
        const ring = KeyRing.load(secrets, ['billing']);
        jest.advanceTimersByTime(1_000);
        const change = rotateServiceKey(directory, 'orders', SERVICE_NAMES);

        expect(ring.trustedKey(change.current)).toMatchObject({ service: 'orders' });
      } finally {
        jest.useRealTimers();
      }
    });

    it('reads it at most once a second for unknown kids', () => {
      jest.useFakeTimers({ now: Date.now() });
      try {
        const ring = KeyRing.load(secrets, ['billing']);
        const change = rotateServiceKey(directory, 'orders', SERVICE_NAMES);

        expect(ring.trustedKey(change.current)).toBeUndefined();
        jest.advanceTimersByTime(1_000);
        expect(ring.trustedKey(change.current)).toBeDefined();
      } finally {
        jest.useRealTimers();
      }
    });

    it('keeps the last good trust file when the new one is malformed or half written', () => {
      const ring = KeyRing.load(secrets, ['billing']);
      const kids = ring.trustedKids();
      const text = secrets.read(SECRET_NAMES.trust);

      writeFileSync(join(directory, SECRET_NAMES.trust), text.slice(0, text.length / 2));
      expect(ring.reload()).toBe(false);
      writeFileSync(join(directory, SECRET_NAMES.trust), '{"version": 2, "keys": [{}]}');
      expect(ring.reload()).toBe(false);

      expect(ring.trustedKids()).toEqual(kids);
      for (const { kid } of kids) expect(ring.trustedKey(kid)).toBeDefined();
    });

    it('keeps signing with the key it started with until it is restarted', () => {
      const ring = KeyRing.load(secrets, ['orders']);
      const before = ring.signerFor('orders').kid;
      const change = rotateServiceKey(directory, 'orders', SERVICE_NAMES);
      ring.reload();

      expect(ring.signerFor('orders').kid).toBe(before);
      expect(KeyRing.load(secrets, ['orders']).signerFor('orders').kid).toBe(change.current);
    });
  });
});
