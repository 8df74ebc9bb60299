import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationShutdown,
  type OnModuleInit,
} from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import {
  type KeyObject,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
} from 'node:crypto';
import { DataSource, type EntityManager, IsNull } from 'typeorm';

import { SecurityEvents } from '@portcullis/audit';
import type { PublicJwk } from '@portcullis/contracts';
import { APP_CONFIG, type AppConfig, SECRETS } from '@portcullis/core';
import { SECRET_NAMES, SecretBox, type SecretsProvider, rsaThumbprint } from '@portcullis/crypto';
import { Outbox } from '@portcullis/messaging';

import { SigningKey } from './signing-key.entity';

/** Tokens may be checked with up to this much clock skew; keys outlive them by as much. */
const SKEW_MS = 60_000;
const RELOAD_INTERVAL_MS = 10_000;

export interface ActiveKey {
  readonly kid: string;
  readonly privateKey: KeyObject;
}

/**
 * The keys that sign access tokens. Kept in the database with the private half sealed under
 * the key-encryption key from `SECRETS_DIR`; one is active, and a rotated-out key stays
 * published until every token it signed has expired. Several auth instances share the table
 * and reload it every few seconds.
 */
@Injectable()
export class SigningKeys implements OnModuleInit, OnApplicationShutdown {
  private readonly logger = new Logger(SigningKeys.name);
  private readonly box: SecretBox;
  private active?: ActiveKey;
  private published: PublicJwk[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    @InjectDataSource('auth') private readonly db: DataSource,
    @Inject(SECRETS) private readonly secrets: SecretsProvider,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(Outbox) private readonly outbox: Outbox,
    private readonly events: SecurityEvents,
  ) {
    this.box = SecretBox.fromBase64(secrets.read(SECRET_NAMES.tokenKeyEncryptionKey));
  }

  async onModuleInit(): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['portcullis:signing-keys']);
      if ((await tx.countBy(SigningKey, { retiredAt: IsNull() })) > 0) return;
      const first = (await tx.count(SigningKey)) === 0;
      await this.insertKey(tx, first ? this.initialKey() : newRsaKey());
    });
    await this.reload();
    this.timer = setInterval(() => void this.tick(), RELOAD_INTERVAL_MS);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  /** The key new tokens are signed with. */
  current(): ActiveKey {
    if (!this.active) throw new Error('no active token signing key');
    return this.active;
  }

  /** The JWKS: the active key and every retired key a valid token may still name. */
  publicKeys(): PublicJwk[] {
    return this.published.map((key) => ({ ...key }));
  }

  /**
   * Makes a new key active. The previous one keeps verifying until its tokens expire, unless
   * `withdrawPrevious` (a suspected leak): then every key that still verifies leaves the JWKS
   * at once and every service is told to drop them.
   */
  async rotate(withdrawPrevious = false): Promise<{ kid: string; withdrawnKids: string[] }> {
    const now = new Date();
    const { kid, withdrawnKids } = await this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', ['portcullis:signing-keys']);
      const previous = await tx.findBy(SigningKey, { retiredAt: IsNull() });
      for (const key of previous) await tx.update(SigningKey, { kid: key.kid }, { retiredAt: now });
      // A suspected leak withdraws every key that still verifies, not only the last active one.
      const verifying = withdrawPrevious
        ? await tx.findBy(SigningKey, { withdrawnAt: IsNull() })
        : [];
      const horizon = Date.now() - this.config.accessTokenTtlSeconds * 1000 - SKEW_MS;
      const withdrawn = verifying
        .filter((key) => key.retiredAt === null || key.retiredAt.getTime() > horizon)
        .map((key) => key.kid);
      for (const kid of withdrawn) await tx.update(SigningKey, { kid }, { withdrawnAt: now });
      const created = await this.insertKey(tx, newRsaKey());
      await this.outbox.enqueue(tx, 'auth.keys.rotated', {
        activeKid: created,
        withdrawnKids: withdrawn,
      });
      return { kid: created, withdrawnKids: withdrawn };
    });

    await this.reload();
    this.events.record({
      type: 'auth.signing_key_rotated',
      outcome: 'allowed',
      resourceType: 'signing_key',
      resourceId: kid,
      details: { withdrawnPrevious: withdrawPrevious },
    });
    return { kid, withdrawnKids };
  }

  private async tick(): Promise<void> {
    try {
      const period = this.config.tokenKeyRotationSeconds * 1000;
      const active = await this.db.getRepository(SigningKey).findOneBy({ retiredAt: IsNull() });
      if (period > 0 && active && Date.now() - active.createdAt.getTime() >= period) {
        await this.rotate();
        return;
      }
      await this.reload();
    } catch (error) {
      this.logger.warn({ msg: 'signing keys not reloaded', error: String(error) });
    }
  }

  private async reload(): Promise<void> {
    const horizon = Date.now() - this.config.accessTokenTtlSeconds * 1000 - SKEW_MS;
    const keys = await this.db.getRepository(SigningKey).find({ order: { createdAt: 'DESC' } });
    const active = keys.find((key) => key.retiredAt === null);
    if (!active) throw new Error('no active token signing key');
    this.active = {
      kid: active.kid,
      privateKey: createPrivateKey(this.box.open(active.privateKeySealed, sealContext(active.kid))),
    };
    this.published = keys
      .filter(
        (key) =>
          key.withdrawnAt === null && (key.retiredAt === null || key.retiredAt.getTime() > horizon),
      )
      .map((key) => key.publicJwk);
  }

  /** The first key: imported from `token-signing.key` when an operator provides one. */
  private initialKey(): KeyObject {
    if (this.secrets.has(SECRET_NAMES.tokenSigningKey)) {
      const key = createPrivateKey(this.secrets.read(SECRET_NAMES.tokenSigningKey));
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (key.asymmetricKeyType !== 'rsa' || bits < 2048) {
        throw new Error('token-signing.key must be an RSA key of at least 2048 bits');
      }
      this.logger.log({ msg: 'imported the token signing key from SECRETS_DIR' });
      return key;
    }
    return newRsaKey();
  }

  private async insertKey(tx: EntityManager, privateKey: KeyObject): Promise<string> {
    const publicKey = createPublicKey(privateKey);
    const kid = rsaThumbprint(publicKey);
    const jwk = publicKey.export({ format: 'jwk' });
    const pem = Buffer.from(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString());
    await tx.insert(SigningKey, {
      kid,
      algorithm: 'RS256',
      publicJwk: { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n: jwk.n!, e: jwk.e! },
      privateKeySealed: this.box.seal(pem, sealContext(kid)),
      retiredAt: null,
      withdrawnAt: null,
    });
    return kid;
  }
}

function newRsaKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

function sealContext(kid: string): string {
  return `auth.signing_keys.private_key:${kid}`;
}
