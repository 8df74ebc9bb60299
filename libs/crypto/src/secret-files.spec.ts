import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import { MissingSecretError, SecretFiles } from './secret-files';

describe(SecretFiles.name, () => {
  let directory: string;
  let secrets: SecretFiles;

  beforeAll(() => {
    directory = createTempDir('secret-files');
    mkdirSync(join(directory, 'services'));
    writeFileSync(join(directory, 'services', 'orders.key'), 'orders key\n');
    secrets = new SecretFiles(directory);
  });

  afterAll(() => {
    removeTempDir(directory);
  });

  describe('with a name inside the directory', () => {
    it('reads the file', () => {
      expect(secrets.read('services/orders.key')).toBe('orders key\n');
    });

    it('tells whether the file exists', () => {
      expect(secrets.has('services/orders.key')).toBe(true);
      expect(secrets.has('services/billing.key')).toBe(false);
    });

    it('resolves the name under the directory', () => {
      expect(secrets.pathOf('services/./orders.key')).toBe(join(directory, 'services/orders.key'));
    });
  });

  describe('with a name that leaves the directory', () => {
    it.each(['../x', 'services/../../x', '/etc/passwd', '..'])('refuses %s', (name) => {
      expect(() => secrets.pathOf(name)).toThrow('secret names are relative to SECRETS_DIR');
      expect(() => secrets.read(name)).toThrow('secret names are relative to SECRETS_DIR');
      expect(() => secrets.has(name)).toThrow('secret names are relative to SECRETS_DIR');
    });
  });

  describe('when the secret is missing', () => {
    it('throws a MissingSecretError that names the secret', () => {
      let thrown: unknown;
      try {
        secrets.read('token-signing.key', 'Mount it.');
      } catch (error) {
        thrown = error;
      }

      expect(thrown).toBeInstanceOf(MissingSecretError);
      const error = thrown as MissingSecretError;
      expect(error.secret).toBe('token-signing.key');
      expect(error.name).toBe('MissingSecretError');
      expect(error.message).toMatch(/^Missing secret "token-signing\.key"\. /);
      expect(error.message).toContain('Mount it.');
    });
  });
});
