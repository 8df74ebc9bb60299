import { createHash, type KeyObject } from 'node:crypto';

/**
 * A stable key id for a service signing key: the service name and the first 16 hex digits
 * of the SHA-256 of the public key (SPKI DER). Key ids are looked up in maps, never used as
 * paths or in queries.
 */
export function serviceKeyId(service: string, publicKey: KeyObject): string {
  const der = publicKey.export({ type: 'spki', format: 'der' });
  return `${service}-${createHash('sha256').update(der).digest('hex').slice(0, 16)}`;
}

/** RFC 7638 JWK thumbprint of an RSA public key, used as the `kid` of token signing keys. */
export function rsaThumbprint(publicKey: KeyObject): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  return createHash('sha256').update(canonical).digest('base64url');
}
