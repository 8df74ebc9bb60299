import { describe, expect, it } from '@jest/globals';

import { SecretBox, SecretBoxError } from './secret-box';

describe(SecretBox.name, () => {
  const box = SecretBox.fromBase64(SecretBox.generateKey());
  const secret = Buffer.from('-----BEGIN PRIVATE KEY-----\nnot really\n', 'utf8');

  it('opens what it sealed for the same associated data', () => {
    const sealed = box.seal(secret, 'auth.signing_keys:kid-1');
    expect(sealed.includes(secret)).toBe(false);
    expect(box.open(sealed, 'auth.signing_keys:kid-1')).toEqual(secret);
  });

  it('refuses a value bound to another row', () => {
    const sealed = box.seal(secret, 'auth.signing_keys:kid-1');
    expect(() => box.open(sealed, 'auth.signing_keys:kid-2')).toThrow(SecretBoxError);
  });

  it('refuses a value with any byte changed', () => {
    const sealed = box.seal(secret, 'row');
    for (let index = 0; index < sealed.length; index += 1) {
      const altered = Buffer.from(sealed);
      altered[index] ^= 0x01;
      expect(() => box.open(altered, 'row')).toThrow(SecretBoxError);
    }
  });

  it('refuses a value sealed under another key, and truncated values', () => {
    const other = SecretBox.fromBase64(SecretBox.generateKey());
    expect(() => other.open(box.seal(secret, 'row'), 'row')).toThrow(SecretBoxError);
    expect(() => box.open(Buffer.alloc(10), 'row')).toThrow(SecretBoxError);
  });

  it('accepts only 32-byte keys', () => {
    expect(() => SecretBox.fromBase64(Buffer.alloc(16).toString('base64'))).toThrow(/32 bytes/);
  });
});
