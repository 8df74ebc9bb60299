import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
} from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { SECRET_NAMES } from './development-secrets';
import { serviceKeyId } from './key-ids';
import {
  type TrustFile,
  type TrustedKeyEntry,
  formatTrustFile,
  parseTrustFile,
  trustEntry,
} from './trust-file';

/** What a rotation or retirement changed: key ids only, never key material. */
export interface ServiceKeyChange {
  readonly service: string;
  readonly current: string;
  readonly previous?: string;
  readonly retired?: string;
}

/**
 * Gives a service a new Ed25519 message-signing key under a new kid: the trust file lists it
 * as the service's current key and keeps the key it replaces as `previous`, so receivers accept
 * both; then `services/<service>.key` is replaced. The trust file is written first, so no
 * process can load a signing key that the trust file does not list. Refuses while a previous
 * key is still listed (retire it first).
 */
export function rotateServiceKey(
  directory: string,
  service: string,
  services: readonly string[],
): ServiceKeyChange {
  const trust = readTrustFile(directory, services, service);
  const own = trust.keys.filter((key) => key.service === service);
  const previous = own.find((key) => key.status === 'previous');
  if (previous) {
    throw new Error(
      `${service} still has a previous key (${previous.kid}): run keys:retire-service first`,
    );
  }
  const current = own.find((key) => key.status === 'current');
  if (!current) throw new Error(`the trust file lists no current ${service} key`);

  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const next = trustEntry(service, publicKey, 'current');
  current.status = 'previous';
  trust.keys.push(next);
  writeSecret(directory, SECRET_NAMES.trust, formatTrustFile(trust));
  writeSecret(
    directory,
    SECRET_NAMES.serviceKey(service),
    privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
  );
  return { service, current: next.kid, previous: current.kid };
}

/** Drops a service's previous key from the trust file: messages signed with it are refused. */
export function retireServiceKey(
  directory: string,
  service: string,
  services: readonly string[],
): ServiceKeyChange {
  const trust = readTrustFile(directory, services, service);
  const previous = trust.keys.find((key) => key.service === service && key.status === 'previous');
  if (!previous) throw new Error(`${service} has no previous key to retire`);
  const current = trust.keys.find((key) => key.service === service && key.status === 'current');
  trust.keys = trust.keys.filter((key) => key !== previous);
  writeSecret(directory, SECRET_NAMES.trust, formatTrustFile(trust));
  return { service, current: current?.kid ?? '', retired: previous.kid };
}

/**
 * The trust file in version 2 form. A version 1 file is converted: the key of the service's
 * key file is its current key, one other key of it the previous one (more are refused).
 */
function readTrustFile(directory: string, services: readonly string[], service: string): TrustFile {
  if (!services.includes(service)) throw new Error(`unknown service ${JSON.stringify(service)}`);
  const text = readFileSync(join(directory, SECRET_NAMES.trust), 'utf8');
  const parsed = parseTrustFile(text, services);
  const file = JSON.parse(text) as TrustFile;
  if (file.version === 2) return file;

  const keys: TrustedKeyEntry[] = [];
  for (const name of new Set(parsed.map((key) => key.service))) {
    const own = parsed.filter((key) => key.service === name);
    const signingKid = signingKidOf(directory, name);
    const current = own.find((key) => key.kid === signingKid) ?? (own.length === 1 ? own[0] : null);
    const others = own.filter((key) => key !== current);
    if (!current || others.length > 1) {
      throw new Error(
        `the version 1 trust file lists ${own.length} keys for ${name}: keep the one its key ` +
          'file holds and at most one other',
      );
    }
    keys.push(trustEntry(name, current.publicKey, 'current'));
    for (const other of others) keys.push(trustEntry(name, other.publicKey, 'previous'));
  }
  return { version: 2, keys };
}

function signingKidOf(directory: string, service: string): string | undefined {
  const path = join(directory, SECRET_NAMES.serviceKey(service));
  if (!existsSync(path)) return undefined;
  const privateKey: KeyObject = createPrivateKey(readFileSync(path, 'utf8'));
  return serviceKeyId(service, createPublicKey(privateKey));
}

/** Rewrites a secret in place (bind-mounted files must keep their inode), readable by owner. */
function writeSecret(directory: string, name: string, contents: string): void {
  const path = join(directory, name);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  writeFileSync(path, contents, { mode: 0o600 });
  chmodSync(path, 0o600);
}
