import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import { openSecrets } from './secret-sources';
import { MissingSecretError, SecretFiles } from './secret-files';
import { EnvironmentSecrets, LayeredSecrets, environmentSecretName } from './secrets-provider';

describe(environmentSecretName.name, () => {
  it.each([
    ['data-keys.json', 'PORTCULLIS_SECRET_DATA_KEYS_JSON'],
    ['services/auth.key', 'PORTCULLIS_SECRET_SERVICES_AUTH_KEY'],
    ['token-key-encryption.key', 'PORTCULLIS_SECRET_TOKEN_KEY_ENCRYPTION_KEY'],
  ])('names %s %s', (name, variable) => {
    expect(environmentSecretName(name)).toBe(variable);
  });
});

describe(LayeredSecrets.name, () => {
  let directory: string;

  beforeAll(() => {
    directory = createTempDir('layered-secrets');
    writeFileSync(join(directory, 'trust.json'), 'from file');
    writeFileSync(join(directory, 'data-keys.json'), 'file keys');
  });

  afterAll(() => {
    removeTempDir(directory);
  });

  const layered = () =>
    new LayeredSecrets([
      new EnvironmentSecrets({ PORTCULLIS_SECRET_DATA_KEYS_JSON: 'environment keys' }),
      new SecretFiles(directory),
    ]);

  it('takes a secret from the first layer that has it', () => {
    expect(layered().read('data-keys.json')).toBe('environment keys');
    expect(layered().read('trust.json')).toBe('from file');
  });

  it('names the secret and every place it looked, never a value', () => {
    let thrown: unknown;
    try {
      layered().read('blind-index-keys.json');
    } catch (error) {
      thrown = error;
    }

    expect(thrown).toBeInstanceOf(MissingSecretError);
    const message = (thrown as Error).message;
    expect(message).toMatch(/^Missing secret "blind-index-keys\.json"\./);
    expect(message).toContain('PORTCULLIS_SECRET_BLIND_INDEX_KEYS_JSON');
    expect(message).toContain(join(directory, 'blind-index-keys.json'));
    expect(message).not.toContain('environment keys');
    expect(message).not.toContain('file keys');
  });

  describe(openSecrets.name, () => {
    it('is just the files when nothing else is configured', async () => {
      const secrets = await openSecrets({ directory, environment: {}, names: [] });

      expect(secrets).toBeInstanceOf(SecretFiles);
    });

    it('puts environment variables before the files', async () => {
      const secrets = await openSecrets({
        directory,
        environment: { PORTCULLIS_SECRET_TRUST_JSON: 'from environment' },
        names: [],
      });

      expect(secrets.source).toBe('environment, then files');
      expect(secrets.read('trust.json')).toBe('from environment');
      expect(secrets.read('data-keys.json')).toBe('file keys');
    });
  });
});
