import { createHmac } from 'node:crypto';

import { BlindIndex } from './blind-index';
import { Keyring, addKeyringVersion, createKeyringFile, retireKeyringVersions } from './keyring';

const NAME = 'blind-index-keys.json';
const EMAIL = 'auth.accounts.email';

describe(BlindIndex.name, () => {
  const file = createKeyringFile();
  const index = BlindIndex.fromKeyring(JSON.stringify(file), NAME);

  it('is the key version and the HMAC-SHA256 of purpose and value', () => {
    const key = Keyring.parse(JSON.stringify(file), NAME).key(1)!;
    const expected = createHmac('sha256', key).update(`${EMAIL}\0ada@example.com`).digest();

    const digest = index.digest(EMAIL, 'ada@example.com');

    expect(BlindIndex.versionOf(digest)).toBe(1);
    expect(digest.subarray(4)).toEqual(expected);
  });

  it('is stable for one value and differs between values and purposes', () => {
    expect(index.digest(EMAIL, 'a@x.io')).toEqual(index.digest(EMAIL, 'a@x.io'));
    expect(index.digest(EMAIL, 'a@x.io')).not.toEqual(index.digest(EMAIL, 'b@x.io'));
    expect(index.digest(EMAIL, 'a@x.io')).not.toEqual(index.digest('other', 'a@x.io'));
  });

  it('differs under another key, so it tells nothing without the key', () => {
    const other = BlindIndex.fromKeyring(JSON.stringify(createKeyringFile()), NAME);

    expect(other.digest(EMAIL, 'a@x.io')).not.toEqual(index.digest(EMAIL, 'a@x.io'));
  });

  describe('while keys rotate', () => {
    const rotated = addKeyringVersion(file);

    it('writes under the new version and looks up under both', () => {
      const both = BlindIndex.fromKeyring(JSON.stringify(rotated), NAME);

      expect(BlindIndex.versionOf(both.digest(EMAIL, 'a@x.io'))).toBe(2);
      expect(
        both.candidates(EMAIL, 'a@x.io').map((digest) => BlindIndex.versionOf(digest)),
      ).toEqual([2, 1]);
      expect(both.candidates(EMAIL, 'a@x.io')[1]).toEqual(index.digest(EMAIL, 'a@x.io'));
    });

    it('looks up under the new version only once the old one is retired', () => {
      const retired = BlindIndex.fromKeyring(
        JSON.stringify(retireKeyringVersions(rotated, 2)),
        NAME,
      );

      expect(
        retired.candidates(EMAIL, 'a@x.io').map((digest) => BlindIndex.versionOf(digest)),
      ).toEqual([2]);
    });
  });
});
