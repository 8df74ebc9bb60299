import { performance } from 'node:perf_hooks';

import { PasswordHasher } from './password-hasher';

const PASSWORD = 'correct horse battery staple';

/** Wall time of one call, in milliseconds. */
async function timeOf(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

describe(PasswordHasher.name, () => {
  const hasher = new PasswordHasher();
  let stored: string;

  beforeAll(async () => {
    stored = await hasher.hash(PASSWORD);
  });

  describe('hashing', () => {
    it('uses argon2id with 19 MiB, two passes and one lane', () => {
      expect(stored).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    });

    it('salts every hash', async () => {
      expect(await hasher.hash(PASSWORD)).not.toBe(stored);
    });
  });

  describe('verifying against a stored hash', () => {
    it('accepts the right password', async () => {
      expect(await hasher.verify(stored, PASSWORD)).toBe(true);
    });

    it.each(['correct horse battery stapl', 'Correct horse battery staple', ''])(
      'refuses %p',
      async (password) => {
        expect(await hasher.verify(stored, password)).toBe(false);
      },
    );

    it('refuses anything when the stored hash is not an argon2 hash', async () => {
      expect(await hasher.verify('not-a-hash', PASSWORD)).toBe(false);
      expect(await hasher.verify('', PASSWORD)).toBe(false);
    });
  });

  describe('for an unknown account', () => {
    it('refuses every password, the dummy one included', async () => {
      expect(await hasher.verify(undefined, PASSWORD)).toBe(false);
      expect(await hasher.verify(undefined, 'portcullis-timing-equaliser')).toBe(false);
    });

    it('takes at least half as long as checking a real account', async () => {
      await hasher.verify(undefined, PASSWORD);
      await hasher.verify(stored, 'warm up');

      let known = 0;
      let unknown = 0;
      for (let run = 0; run < 5; run++) {
        known += await timeOf(() => hasher.verify(stored, 'wrong password'));
        unknown += await timeOf(() => hasher.verify(undefined, 'wrong password'));
      }

      expect(unknown).toBeGreaterThanOrEqual(known / 2);
    });
  });
});
