import { createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { serviceKeyId } from './key-ids';
import { createKeyringFile } from './keyring';
import { SecretBox } from './secret-box';
import { type TrustFile, formatTrustFile, trustEntry } from './trust-file';

/** File names inside `SECRETS_DIR`. */
export const SECRET_NAMES = {
  serviceKey: (service: string): string => `services/${service}.key`,
  trust: 'trust.json',
  /** Encrypts auth's token signing keys at rest (32 bytes, base64). */
  tokenKeyEncryptionKey: 'token-key-encryption.key',
  /** Optional: an RSA key (PEM) auth imports as its first token signing key. */
  tokenSigningKey: 'token-signing.key',
  /** Versioned key-encryption keys that wrap field data keys (a keyring, JSON). */
  dataKeys: 'data-keys.json',
  /** Versioned HMAC keys of blind indexes, such as the one on account emails (a keyring). */
  blindIndexKeys: 'blind-index-keys.json',
  /** The bearer token Prometheus presents to `GET /metrics` (random, base64url). */
  metricsToken: 'metrics.token',
} as const;

/** Every secret name a process of these services may read. */
export function knownSecretNames(services: readonly string[]): string[] {
  return [
    ...services.map(SECRET_NAMES.serviceKey),
    SECRET_NAMES.trust,
    SECRET_NAMES.tokenKeyEncryptionKey,
    SECRET_NAMES.tokenSigningKey,
    SECRET_NAMES.dataKeys,
    SECRET_NAMES.blindIndexKeys,
    SECRET_NAMES.metricsToken,
  ];
}

/**
 * Creates whatever development secrets are missing: each service's Ed25519 message-signing
 * key, the key that encrypts token signing keys at rest, the data and blind-index keyrings,
 * the metrics scrape token, and a trust file listing every service's public key. Existing keys are kept. Returns the
 * names it wrote (never the values).
 */
export function ensureDevelopmentSecrets(directory: string, services: readonly string[]): string[] {
  const written: string[] = [];
  const write = (name: string, contents: string): void => {
    const path = join(directory, name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, contents, { mode: 0o600 });
    chmodSync(path, 0o600);
    written.push(name);
  };

  for (const service of services) {
    const name = SECRET_NAMES.serviceKey(service);
    if (existsSync(join(directory, name))) continue;
    const { privateKey } = generateKeyPairSync('ed25519');
    write(name, privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
  }

  if (!existsSync(join(directory, SECRET_NAMES.tokenKeyEncryptionKey))) {
    write(SECRET_NAMES.tokenKeyEncryptionKey, `${SecretBox.generateKey()}\n`);
  }
  for (const keyring of [SECRET_NAMES.dataKeys, SECRET_NAMES.blindIndexKeys]) {
    if (!existsSync(join(directory, keyring))) {
      write(keyring, `${JSON.stringify(createKeyringFile(), null, 2)}\n`);
    }
  }

  if (!existsSync(join(directory, SECRET_NAMES.metricsToken))) {
    write(SECRET_NAMES.metricsToken, `${randomBytes(32).toString('base64url')}\n`);
  }

  const trustPath = join(directory, SECRET_NAMES.trust);
  const trust: TrustFile = existsSync(trustPath)
    ? (JSON.parse(readFileSync(trustPath, 'utf8')) as TrustFile)
    : { version: 2, keys: [] };
  let trustChanged = !existsSync(trustPath);
  for (const service of services) {
    const pem = readFileSync(join(directory, SECRET_NAMES.serviceKey(service)), 'utf8');
    const publicKey = createPublicKey(pem);
    const kid = serviceKeyId(service, publicKey);
    if (trust.keys.some((entry) => entry.kid === kid)) continue;
    const entry = trustEntry(service, publicKey, 'current');
    if (trust.version === 1) {
      // A version 1 file keeps its form: its keys carry no status.
      delete entry.status;
    } else {
      // A replaced key file: the key it held before stays trusted as the previous one.
      const own = trust.keys.filter((key) => key.service === service);
      if (own.some((key) => key.status === 'previous')) {
        throw new Error(
          `the trust file already holds a previous ${service} key: run keys:retire-service first`,
        );
      }
      for (const key of own) key.status = 'previous';
    }
    trust.keys.push(entry);
    trustChanged = true;
  }
  if (trustChanged) write(SECRET_NAMES.trust, formatTrustFile(trust));
  return written;
}
