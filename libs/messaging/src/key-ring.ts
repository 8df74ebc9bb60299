import { type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';

import type { ServiceName } from '@portcullis/core';
import { isServiceName } from '@portcullis/core';
import { SECRET_NAMES, type SecretFiles, type TrustFile, serviceKeyId } from '@portcullis/crypto';

export interface SigningKey {
  readonly kid: string;
  readonly service: ServiceName;
  readonly privateKey: KeyObject;
}

export interface TrustedKey {
  readonly kid: string;
  readonly service: ServiceName;
  readonly publicKey: KeyObject;
}

const KID_PATTERN = /^[a-z]+-[0-9a-f]{16}$/;

/**
 * The message-signing keys this process holds (one per hosted service) and the public keys
 * it trusts (every service's, from the trust file). Key ids are only ever map keys.
 */
export class KeyRing {
  private constructor(
    private readonly signing: ReadonlyMap<ServiceName, SigningKey>,
    private readonly trusted: ReadonlyMap<string, TrustedKey>,
  ) {}

  static load(secrets: SecretFiles, services: readonly ServiceName[]): KeyRing {
    const trusted = new Map<string, TrustedKey>();
    const trust = JSON.parse(secrets.read(SECRET_NAMES.trust)) as TrustFile;
    for (const entry of trust.keys ?? []) {
      if (!isServiceName(entry.service) || !KID_PATTERN.test(entry.kid)) {
        throw new Error('trust file holds an entry with an unknown service or a malformed kid');
      }
      const publicKey = createPublicKey({
        key: Buffer.from(entry.publicKey, 'base64'),
        format: 'der',
        type: 'spki',
      });
      if (publicKey.asymmetricKeyType !== 'ed25519') {
        throw new Error(`trust file key ${entry.kid} is not an Ed25519 key`);
      }
      if (serviceKeyId(entry.service, publicKey) !== entry.kid) {
        throw new Error(`trust file key ${entry.kid} does not match its public key`);
      }
      trusted.set(entry.kid, { kid: entry.kid, service: entry.service, publicKey });
    }

    const signing = new Map<ServiceName, SigningKey>();
    for (const service of services) {
      const privateKey = createPrivateKey(secrets.read(SECRET_NAMES.serviceKey(service)));
      if (privateKey.asymmetricKeyType !== 'ed25519') {
        throw new Error(`the ${service} message-signing key is not an Ed25519 key`);
      }
      const kid = serviceKeyId(service, createPublicKey(privateKey));
      if (!trusted.has(kid)) {
        throw new Error(`the ${service} message-signing key (${kid}) is not in the trust file`);
      }
      signing.set(service, { kid, service, privateKey });
    }
    return new KeyRing(signing, trusted);
  }

  signerFor(service: ServiceName): SigningKey {
    const key = this.signing.get(service);
    if (!key) throw new Error(`this process holds no signing key for ${service}`);
    return key;
  }

  trustedKey(kid: string): TrustedKey | undefined {
    return KID_PATTERN.test(kid) ? this.trusted.get(kid) : undefined;
  }
}
