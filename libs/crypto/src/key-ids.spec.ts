import { createHash, generateKeyPairSync } from 'node:crypto';

import { rsaThumbprint, serviceKeyId } from './key-ids';

describe(serviceKeyId.name, () => {
  const { publicKey } = generateKeyPairSync('ed25519');

  it('is the service name and 16 hex digits', () => {
    expect(serviceKeyId('orders', publicKey)).toMatch(/^orders-[0-9a-f]{16}$/);
  });

  it('takes the digits from the SHA-256 of the SPKI DER encoding', () => {
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const digest = createHash('sha256').update(der).digest('hex');

    expect(serviceKeyId('billing', publicKey)).toBe(`billing-${digest.slice(0, 16)}`);
  });

  it('differs between two keys of one service', () => {
    const other = generateKeyPairSync('ed25519').publicKey;

    expect(serviceKeyId('auth', other)).not.toBe(serviceKeyId('auth', publicKey));
  });
});

describe(rsaThumbprint.name, () => {
  it('is the RFC 7638 thumbprint of the key', () => {
    const { publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = publicKey.export({ format: 'jwk' });
    const members = `{"e":"${jwk.e}","kty":"RSA","n":"${jwk.n}"}`;

    expect(rsaThumbprint(publicKey)).toBe(createHash('sha256').update(members).digest('base64url'));
  });
});
