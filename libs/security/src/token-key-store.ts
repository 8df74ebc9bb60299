import { Inject, Injectable, Logger } from '@nestjs/common';
import { type KeyObject, createPublicKey } from 'node:crypto';

import { MessageClient } from '@portcullis/messaging';

const KID = /^[A-Za-z0-9_-]{1,128}$/;
const MIN_REFRESH_INTERVAL_MS = 5_000;
const MAX_REMEMBERED_HEADERS = 64;

/** The one token algorithm accepted: RS256 (fast to verify, supported by `jsonwebtoken`). */
export const TOKEN_ALGORITHM = 'RS256';

export class TokenKeyError extends Error {}

/**
 * Public keys that sign access tokens, learnt from auth over a signed request. An unknown
 * `kid` triggers at most one refresh per interval; keys named inside a token (`jwk`, `jku`,
 * `x5u`) are never used.
 */
@Injectable()
export class TokenKeyStore {
  private readonly logger = new Logger(TokenKeyStore.name);
  private keys = new Map<string, KeyObject>();
  private readonly kidsByHeader = new Map<string, string>();
  private lastRefresh = 0;
  private inFlight?: Promise<void>;

  constructor(@Inject(MessageClient) private readonly messages: MessageClient) {}

  /** The verification key for a raw JWT, chosen only by its `kid` from keys auth published. */
  async keyForToken(rawJwt: string): Promise<KeyObject> {
    const kid = this.kidOf(rawJwt);
    const known = this.keys.get(kid);
    if (known) return known;
    await this.refresh();
    const fetched = this.keys.get(kid);
    if (!fetched) throw new TokenKeyError('unknown kid');
    return fetched;
  }

  /**
   * The key for a raw JWT when it is already known, without waiting: the common case, which
   * then costs no promise. `undefined` means {@link keyForToken} must be asked.
   */
  knownKeyFor(rawJwt: string): KeyObject | undefined {
    return this.keys.get(this.kidOf(rawJwt));
  }

  /** The `kid` of a token whose header names RS256; headers seen before are not parsed again. */
  private kidOf(rawJwt: string): string {
    const dot = rawJwt.indexOf('.');
    if (dot < 1 || dot > 2048) throw new TokenKeyError('malformed token');
    const headerText = rawJwt.slice(0, dot);
    const remembered = this.kidsByHeader.get(headerText);
    if (remembered !== undefined) return remembered;
    const header = decodeHeader(headerText);
    if (header.alg !== TOKEN_ALGORITHM) throw new TokenKeyError('unexpected algorithm');
    if (typeof header.kid !== 'string' || !KID.test(header.kid)) {
      throw new TokenKeyError('missing or malformed kid');
    }
    if (this.kidsByHeader.size >= MAX_REMEMBERED_HEADERS) this.kidsByHeader.clear();
    this.kidsByHeader.set(headerText, header.kid);
    return header.kid;
  }

  /**
   * Applies a key rotation at once: withdrawn keys stop verifying immediately, and the
   * current set is fetched without waiting for the refresh interval.
   */
  async replaceAll(withdrawnKids: readonly string[]): Promise<void> {
    for (const kid of withdrawnKids) this.keys.delete(kid);
    await this.inFlight?.catch(() => undefined);
    this.lastRefresh = Date.now();
    this.inFlight = this.fetchKeys().finally(() => {
      this.inFlight = undefined;
    });
    await this.inFlight.catch((error: unknown) => {
      this.logger.warn({ msg: 'token keys not refreshed after rotation', error: String(error) });
    });
  }

  /** At most one fetch per interval, failed or not, so unknown kids cannot flood auth. */
  private refresh(): Promise<void> {
    if (this.inFlight) return this.inFlight;
    if (Date.now() - this.lastRefresh < MIN_REFRESH_INTERVAL_MS) return Promise.resolve();
    this.lastRefresh = Date.now();
    this.inFlight = this.fetchKeys().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchKeys(): Promise<void> {
    const reply = await this.messages.request('auth.keys.query', {});
    const next = new Map<string, KeyObject>();
    for (const jwk of reply.keys) {
      const key = createPublicKey({ key: { kty: jwk.kty, n: jwk.n, e: jwk.e }, format: 'jwk' });
      const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
      if (key.asymmetricKeyType !== 'rsa' || bits < 2048) continue;
      next.set(jwk.kid, key);
    }
    this.keys = next;
    this.logger.log({ msg: 'token keys refreshed', kids: [...next.keys()] });
  }
}

function decodeHeader(headerText: string): { alg?: unknown; kid?: unknown } {
  try {
    const header: unknown = JSON.parse(Buffer.from(headerText, 'base64url').toString('utf8'));
    if (typeof header !== 'object' || header === null) throw new TokenKeyError('malformed token');
    return header;
  } catch {
    throw new TokenKeyError('malformed token');
  }
}
