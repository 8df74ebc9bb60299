import { type KeyObject, generateKeyPairSync } from 'node:crypto';

import { jest } from '@jest/globals';
import { Logger } from '@nestjs/common';

import type { PublicJwk, TokenKeysReply } from '@portcullis/contracts';
import type { MessageClient } from '@portcullis/messaging';

import { TokenKeyError, TokenKeyStore } from './token-key-store';

const T0 = Date.UTC(2030, 0, 1);

function publicJwk(kid: string, publicKey: KeyObject): PublicJwk {
  const { n, e } = publicKey.export({ format: 'jwk' });
  return { kty: 'RSA', kid, use: 'sig', alg: 'RS256', n: n as string, e: e as string };
}

/** A JWT whose header is the given object; only the header is ever read by the store. */
function tokenWith(header: object): string {
  return `${Buffer.from(JSON.stringify(header)).toString('base64url')}.eyJzdWIiOiJ4In0.c2ln`;
}

/** Answers `auth.keys.query` with whatever keys auth currently publishes, counting requests. */
class FakeKeyClient {
  published: PublicJwk[] = [];
  private gate: Promise<void> = Promise.resolve();
  private openGate: () => void = () => undefined;

  readonly request = jest.fn(async (type: string, _query: object): Promise<TokenKeysReply> => {
    if (type !== 'auth.keys.query') throw new Error(`unexpected request ${type}`);
    await this.gate;
    return { keys: [...this.published] };
  });

  /** Holds every reply until {@link release} is called. */
  hold(): void {
    this.gate = new Promise((resolve) => (this.openGate = resolve));
  }

  release(): void {
    this.openGate();
  }
}

describe(TokenKeyStore.name, () => {
  const strong = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey;
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
  let client: FakeKeyClient;
  let store: TokenKeyStore;
  let now: number;

  beforeEach(() => {
    now = T0;
    jest.spyOn(Date, 'now').mockImplementation(() => now);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
    client = new FakeKeyClient();
    client.published = [publicJwk('key-1', strong)];
    store = new TokenKeyStore(client as unknown as MessageClient);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  const keyFor = (kid: string): Promise<KeyObject> =>
    store.keyForToken(tokenWith({ alg: 'RS256', kid }));

  describe('with a kid it has not seen', () => {
    it('fetches the keys once and returns the published key', async () => {
      const key = await keyFor('key-1');

      expect(key.equals(strong)).toBe(true);
      expect(client.request).toHaveBeenCalledTimes(1);
      expect(client.request).toHaveBeenCalledWith('auth.keys.query', {});
    });

    it('answers later lookups of that kid from memory', async () => {
      await keyFor('key-1');
      now += 60_000;

      await keyFor('key-1');

      expect(client.request).toHaveBeenCalledTimes(1);
    });

    it('shares one fetch between many concurrent lookups', async () => {
      client.hold();
      const lookups = Array.from({ length: 20 }, () => keyFor('key-1'));
      client.release();

      const keys = await Promise.all(lookups);

      expect(keys.every((key) => key.equals(strong))).toBe(true);
      expect(client.request).toHaveBeenCalledTimes(1);
    });
  });

  describe('answering without waiting', () => {
    it('knows no key before the first fetch, and does not ask auth', () => {
      expect(store.knownKeyFor(tokenWith({ alg: 'RS256', kid: 'key-1' }))).toBeUndefined();
      expect(client.request).not.toHaveBeenCalled();
    });

    it('returns a fetched key at once', async () => {
      await keyFor('key-1');

      expect(store.knownKeyFor(tokenWith({ alg: 'RS256', kid: 'key-1' }))?.equals(strong)).toBe(
        true,
      );
    });

    it('refuses another algorithm even for a header it has read before', async () => {
      await keyFor('key-1');

      expect(() => store.knownKeyFor(tokenWith({ alg: 'HS256', kid: 'key-1' }))).toThrow(
        new TokenKeyError('unexpected algorithm'),
      );
    });
  });

  describe('with a second unknown kid', () => {
    it('does not fetch again within 5 seconds, and refuses the kid', async () => {
      await keyFor('key-1');
      client.published = [publicJwk('key-1', strong), publicJwk('key-2', other)];
      now += 4_999;

      await expect(keyFor('key-2')).rejects.toThrow(new TokenKeyError('unknown kid'));
      expect(client.request).toHaveBeenCalledTimes(1);
    });

    it('fetches again after 5 seconds and finds a rotated key', async () => {
      await keyFor('key-1');
      client.published = [publicJwk('key-1', strong), publicJwk('key-2', other)];
      now += 5_000;

      const key = await keyFor('key-2');

      expect(key.equals(other)).toBe(true);
      expect(client.request).toHaveBeenCalledTimes(2);
    });
  });

  describe('with keys auth no longer publishes', () => {
    it('forgets them at the next fetch', async () => {
      await keyFor('key-1');
      client.published = [publicJwk('key-2', other)];
      now += 5_000;
      await keyFor('key-2');

      await expect(keyFor('key-1')).rejects.toThrow(TokenKeyError);
    });
  });

  describe('with a published key under 2048 bits', () => {
    it('ignores it and keeps the strong ones', async () => {
      client.published = [publicJwk('weak', weak), publicJwk('key-1', strong)];

      await expect(keyFor('weak')).rejects.toThrow(new TokenKeyError('unknown kid'));
      expect((await keyFor('key-1')).equals(strong)).toBe(true);
    });
  });

  describe('with a token it must not look up', () => {
    it.each<[string, string]>([
      ['alg none', tokenWith({ alg: 'none', kid: 'key-1' })],
      ['alg HS256', tokenWith({ alg: 'HS256', kid: 'key-1' })],
      ['alg RS512', tokenWith({ alg: 'RS512', kid: 'key-1' })],
      ['no alg', tokenWith({ kid: 'key-1' })],
      ['a kid with ../', tokenWith({ alg: 'RS256', kid: '../../etc/passwd' })],
      ['a kid of 129 characters', tokenWith({ alg: 'RS256', kid: 'k'.repeat(129) })],
      ['an empty kid', tokenWith({ alg: 'RS256', kid: '' })],
      ['a numeric kid', tokenWith({ alg: 'RS256', kid: 1 })],
      ['no kid', tokenWith({ alg: 'RS256', jku: 'https://attacker.example/jwks' })],
      ['a header that is not JSON', 'bm90IGpzb24.e30.c2ln'],
      ['a header that is JSON null', `${Buffer.from('null').toString('base64url')}.e30.c2ln`],
      ['garbage', 'garbage'],
      ['an empty string', ''],
      ['a leading dot', '.e30.c2ln'],
    ])('throws TokenKeyError for %s without asking auth', async (_, token) => {
      await expect(store.keyForToken(token)).rejects.toThrow(TokenKeyError);
      expect(client.request).not.toHaveBeenCalled();
    });

    it('accepts a kid of exactly 128 characters', async () => {
      client.published = [publicJwk('k'.repeat(128), strong)];

      expect((await keyFor('k'.repeat(128))).equals(strong)).toBe(true);
    });
  });
});
