import {
  Keyring,
  KeyringError,
  addKeyringVersion,
  createKeyringFile,
  retireKeyringVersions,
} from './keyring';

const NAME = 'data-keys.json';

describe(Keyring.name, () => {
  const parse = (value: unknown): Keyring => Keyring.parse(JSON.stringify(value), NAME);

  describe('with a new keyring', () => {
    it('has version 1, current and decrypting', () => {
      const keyring = parse(createKeyringFile());

      expect(keyring.current).toBe(1);
      expect(keyring.minDecryptVersion).toBe(1);
      expect(keyring.key(1)).toHaveLength(32);
      expect(keyring.activeVersions()).toEqual([1]);
    });
  });

  describe('after versions are added', () => {
    it('makes the newest current and keeps the others decrypting', () => {
      const file = addKeyringVersion(addKeyringVersion(createKeyringFile()));
      const keyring = parse(file);

      expect(keyring.current).toBe(3);
      expect(keyring.activeVersions()).toEqual([3, 2, 1]);
      expect(new Set([1, 2, 3].map((v) => keyring.key(v)!.toString('hex'))).size).toBe(3);
    });
  });

  describe('after older versions are retired', () => {
    it('refuses their keys but keeps them in the file unless trimmed', () => {
      const file = retireKeyringVersions(addKeyringVersion(createKeyringFile()), 2);
      const keyring = parse(file);

      expect(keyring.key(1)).toBeUndefined();
      expect(keyring.activeVersions()).toEqual([2]);
      expect(file.versions.map((entry) => entry.version)).toEqual([1, 2]);
      expect(retireKeyringVersions(file, 2, true).versions.map((v) => v.version)).toEqual([2]);
    });

    it('never retires the current version', () => {
      expect(() => retireKeyringVersions(createKeyringFile(), 2)).toThrow('current');
    });
  });

  describe('with an invalid file', () => {
    const key = Buffer.alloc(32, 7).toString('base64');
    it.each([
      ['not JSON', '{', 'not JSON'],
      ['no versions', '{}', '"versions"'],
      [
        'a short key',
        JSON.stringify({ current: 1, versions: [{ version: 1, key: 'AAAA' }] }),
        '32',
      ],
      [
        'a current version it lacks',
        JSON.stringify({ current: 2, versions: [{ version: 1, key }] }),
        '"current"',
      ],
      [
        'a minimum above current',
        JSON.stringify({ current: 1, minDecryptVersion: 2, versions: [{ version: 1, key }] }),
        'minDecryptVersion',
      ],
      [
        'a repeated version',
        JSON.stringify({
          current: 1,
          versions: [
            { version: 1, key },
            { version: 1, key },
          ],
        }),
        'distinct',
      ],
    ])('refuses %s, naming the secret but no key', (_label, text, problem) => {
      let thrown: unknown;
      try {
        Keyring.parse(text, NAME);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(KeyringError);
      expect((thrown as Error).message).toContain(`"${NAME}"`);
      expect((thrown as Error).message).toContain(problem);
      expect((thrown as Error).message).not.toContain(key);
    });
  });
});
