import { Logger } from '@nestjs/common';
import { type KeyObject, createPrivateKey, createPublicKey } from 'node:crypto';

import type { ServiceName } from '@portcullis/core';
import { SERVICE_NAMES } from '@portcullis/core';
import {
  SECRET_NAMES,
  type SecretsProvider,
  type TrustedKeyStatus,
  parseTrustFile,
  serviceKeyId,
} from '@portcullis/crypto';

export interface SigningKey {
  readonly kid: string;
  readonly service: ServiceName;
  readonly privateKey: KeyObject;
}

export interface TrustedKey {
  readonly kid: string;
  readonly service: ServiceName;
  readonly status: TrustedKeyStatus;
  readonly publicKey: KeyObject;
}

const KID_PATTERN = /^[a-z]+-[0-9a-f]{16}$/;
/** An unknown kid makes the ring read the trust file again, at most this often. */
const UNKNOWN_KID_RELOAD_MS = 1_000;

/**
 * The message-signing keys this process holds (one per hosted service) and the public keys
 * it trusts (every service's current and previous key, from the trust file). Key ids are only
 * ever map keys.
 *
 * The trust file is read again every reload interval, and at once (at most once a second) when
 * a message names a kid the ring does not know, so receivers accept a rotated key without a
 * restart. A trust file that cannot be read or fails a check leaves the last good one in
 * force. Signing keys are read at start-up only: a service signs with a new key once restarted.
 */
export class KeyRing {
  private readonly logger = new Logger(KeyRing.name);
  private timer?: NodeJS.Timeout;
  private lastReload = Date.now();

  private constructor(
    private readonly signing: ReadonlyMap<ServiceName, SigningKey>,
    private trusted: ReadonlyMap<string, TrustedKey>,
    private readonly secrets?: SecretsProvider,
  ) {}

  static load(secrets: SecretsProvider, services: readonly ServiceName[]): KeyRing {
    const trusted = readTrusted(secrets);
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
    return new KeyRing(signing, trusted, secrets);
  }

  /** A ring that signs with the given keys and trusts none: for tools that only send. */
  static signingOnly(keys: ReadonlyMap<ServiceName, KeyObject>): KeyRing {
    const signing = new Map<ServiceName, SigningKey>();
    for (const [service, privateKey] of keys) {
      const kid = serviceKeyId(service, createPublicKey(privateKey));
      signing.set(service, { kid, service, privateKey });
    }
    return new KeyRing(signing, new Map());
  }

  signerFor(service: ServiceName): SigningKey {
    const key = this.signing.get(service);
    if (!key) throw new Error(`this process holds no signing key for ${service}`);
    return key;
  }

  trustedKey(kid: string): TrustedKey | undefined {
    if (!KID_PATTERN.test(kid)) return undefined;
    const known = this.trusted.get(kid);
    if (known || !this.secrets || Date.now() - this.lastReload < UNKNOWN_KID_RELOAD_MS) {
      return known;
    }
    this.reload();
    return this.trusted.get(kid);
  }

  /** Every trusted kid, with its service and status. */
  trustedKids(): Array<Pick<TrustedKey, 'kid' | 'service' | 'status'>> {
    return [...this.trusted.values()].map(({ kid, service, status }) => ({ kid, service, status }));
  }

  /**
   * Reads the trust file again. True when it was taken; false when it was refused, and the
   * keys trusted until now stay in force.
   */
  reload(): boolean {
    if (!this.secrets) return false;
    this.lastReload = Date.now();
    try {
      const trusted = readTrusted(this.secrets);
      const before = [...this.trusted.keys()].sort().join(',');
      const after = [...trusted.keys()].sort().join(',');
      this.trusted = trusted;
      if (before !== after)
        this.logger.log({ msg: 'trust file reloaded', kids: [...trusted.keys()] });
      return true;
    } catch (error) {
      this.logger.warn({
        msg: 'trust file refused; the last good one stays in force',
        error: error instanceof Error ? error.message : 'unreadable',
      });
      return false;
    }
  }

  /** Reloads the trust file every `intervalMs` (and fetches secrets held in memory again). */
  startReloading(intervalMs: number): void {
    this.stopReloading();
    this.timer = setInterval(() => {
      void (async () => {
        await this.secrets?.refresh?.().catch(() => undefined);
        this.reload();
      })();
    }, intervalMs);
    this.timer.unref();
  }

  stopReloading(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}

function readTrusted(secrets: SecretsProvider): Map<string, TrustedKey> {
  const trusted = new Map<string, TrustedKey>();
  for (const key of parseTrustFile(secrets.read(SECRET_NAMES.trust), SERVICE_NAMES)) {
    trusted.set(key.kid, { ...key, service: key.service as ServiceName });
  }
  return trusted;
}
