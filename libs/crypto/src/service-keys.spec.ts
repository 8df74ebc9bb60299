import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import { SECRET_NAMES, ensureDevelopmentSecrets } from './development-secrets';
import { retireServiceKey, rotateServiceKey } from './service-keys';
import { type TrustFile, parseTrustFile } from './trust-file';

const SERVICES = ['auth', 'orders', 'billing'];

describe('service message-signing key rotation', () => {
  let directory: string;

  beforeEach(() => {
    directory = createTempDir('service-keys');
    ensureDevelopmentSecrets(directory, SERVICES);
  });

  afterEach(() => {
    removeTempDir(directory);
  });

  const read = (name: string): string => readFileSync(join(directory, name), 'utf8');
  const trust = (): TrustFile => JSON.parse(read(SECRET_NAMES.trust)) as TrustFile;
  const statusOf = (service: string): Record<string, string | undefined> =>
    Object.fromEntries(
      trust()
        .keys.filter((key) => key.service === service)
        .map((key) => [key.kid, key.status]),
    );

  it('starts with one current key per service in a version 2 trust file', () => {
    expect(trust().version).toBe(2);
    for (const service of SERVICES) expect(Object.values(statusOf(service))).toEqual(['current']);
  });

  describe('rotate', () => {
    it('makes a new key current, keeps the old one as previous and replaces the key file', () => {
      const [before] = Object.keys(statusOf('orders'));
      const oldKeyFile = read(SECRET_NAMES.serviceKey('orders'));

      const change = rotateServiceKey(directory, 'orders', SERVICES);

      expect(change.previous).toBe(before);
      expect(change.current).toMatch(/^orders-[0-9a-f]{16}$/);
      expect(statusOf('orders')).toEqual({ [before]: 'previous', [change.current]: 'current' });
      expect(read(SECRET_NAMES.serviceKey('orders'))).not.toBe(oldKeyFile);
      expect(parseTrustFile(read(SECRET_NAMES.trust), SERVICES)).toHaveLength(4);
    });

    it('leaves the other services alone', () => {
      const billing = statusOf('billing');

      rotateServiceKey(directory, 'orders', SERVICES);

      expect(statusOf('billing')).toEqual(billing);
    });

    it('refuses while a previous key is still trusted', () => {
      rotateServiceKey(directory, 'orders', SERVICES);

      expect(() => rotateServiceKey(directory, 'orders', SERVICES)).toThrow(
        'run keys:retire-service first',
      );
    });

    it('refuses a service that does not exist', () => {
      expect(() => rotateServiceKey(directory, 'payments', SERVICES)).toThrow('unknown service');
    });

    it('converts a version 1 trust file, taking the key file as the current key', () => {
      const legacy = trust();
      writeFileSync(
        join(directory, SECRET_NAMES.trust),
        JSON.stringify({
          version: 1,
          keys: legacy.keys.map(({ kid, service, publicKey }) => ({ kid, service, publicKey })),
        }),
      );
      const [before] = Object.keys(statusOf('orders'));

      const change = rotateServiceKey(directory, 'orders', SERVICES);

      expect(trust().version).toBe(2);
      expect(statusOf('orders')).toEqual({ [before]: 'previous', [change.current]: 'current' });
      expect(Object.values(statusOf('auth'))).toEqual(['current']);
    });
  });

  describe('retire', () => {
    it('drops the previous key and keeps the current one', () => {
      const change = rotateServiceKey(directory, 'orders', SERVICES);

      const retired = retireServiceKey(directory, 'orders', SERVICES);

      expect(retired).toMatchObject({ retired: change.previous, current: change.current });
      expect(statusOf('orders')).toEqual({ [change.current]: 'current' });
    });

    it('refuses when there is nothing to retire', () => {
      expect(() => retireServiceKey(directory, 'orders', SERVICES)).toThrow(
        'no previous key to retire',
      );
    });
  });
});

describe(parseTrustFile.name, () => {
  let directory: string;
  let file: TrustFile;

  beforeAll(() => {
    directory = createTempDir('trust-file');
    ensureDevelopmentSecrets(directory, SERVICES);
    file = JSON.parse(readFileSync(join(directory, SECRET_NAMES.trust), 'utf8')) as TrustFile;
  });

  afterAll(() => {
    removeTempDir(directory);
  });

  const parse = (value: unknown): unknown =>
    parseTrustFile(typeof value === 'string' ? value : JSON.stringify(value), SERVICES);
  const orders = (): TrustFile['keys'][number] => file.keys.find((k) => k.service === 'orders')!;

  it('reads every key with its service and status', () => {
    expect(parse(file)).toEqual(
      file.keys.map((key) =>
        expect.objectContaining({ kid: key.kid, service: key.service, status: 'current' }),
      ),
    );
  });

  it('reads a version 1 file, every key trusted as current', () => {
    const legacy = { version: 1, keys: file.keys.map(({ status: _s, ...key }) => key) };

    expect(parse(legacy)).toHaveLength(3);
  });

  it.each([
    ['text that is not JSON', '{"version": 2, "keys": ['],
    ['a list', '[]'],
    ['no version', { keys: [] }],
    ['version 3', { version: 3, keys: [] }],
    ['no key list', { version: 2 }],
  ])('refuses %s', (_situation, value) => {
    expect(() => parse(value)).toThrow('the trust file');
  });

  it('refuses a version 2 entry without a status', () => {
    const bare: Partial<TrustFile['keys'][number]> = { ...orders() };
    delete bare.status;

    expect(() => parse({ version: 2, keys: [bare] })).toThrow('has no status');
  });

  it('refuses two current keys of one service', () => {
    const second = file.keys.find((key) => key.service === 'auth')!;
    const forged = { ...second, service: 'orders' };

    expect(() => parse({ version: 2, keys: [orders(), forged] })).toThrow();
  });

  it('refuses a service with only a previous key', () => {
    expect(() => parse({ version: 2, keys: [{ ...orders(), status: 'previous' }] })).toThrow(
      'one current and at most one previous key for orders',
    );
  });

  it('refuses an entry with a field it does not know', () => {
    expect(() => parse({ version: 2, keys: [{ ...orders(), expires: 'never' }] })).toThrow(
      'unknown field',
    );
  });

  it('refuses a kid listed twice', () => {
    expect(() => parse({ version: 2, keys: [orders(), orders()] })).toThrow('a kid twice');
  });

  it('refuses a public key that is not a key, naming the kid only', () => {
    expect(() => parse({ version: 2, keys: [{ ...orders(), publicKey: 'bm90IGEga2V5' }] })).toThrow(
      `trust file key ${orders().kid} is not a public key`,
    );
  });
});
