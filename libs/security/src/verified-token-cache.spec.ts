import type { Actor } from '@portcullis/core';

import { VerifiedTokenCache } from './verified-token-cache';

const T0 = Date.UTC(2030, 0, 1);
const EXP = T0 / 1000 + 900;

const ALICE = '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f';
const BOB = '7c9d8e2f-1b3a-4d5c-8e7f-6a5b4c3d2e1f';
const SESSION_A1 = '11111111-1111-4111-8111-111111111111';
const SESSION_A2 = '22222222-2222-4222-8222-222222222222';
const SESSION_B = '33333333-3333-4333-8333-333333333333';

const alice1: Actor = { id: ALICE, sessionId: SESSION_A1, roles: ['customer'] };
const alice2: Actor = { id: ALICE, sessionId: SESSION_A2, roles: ['customer'] };
const bob: Actor = { id: BOB, sessionId: SESSION_B, roles: ['admin'] };

describe(VerifiedTokenCache.name, () => {
  let now: number;
  let cache: VerifiedTokenCache;

  beforeEach(() => {
    now = T0;
    cache = new VerifiedTokenCache(3, () => now);
  });

  const remember = (token: string, actor: Actor, exp = EXP): void =>
    cache.set(token, actor, exp, cache.stamp());

  describe('with a token it verified before', () => {
    it('returns the actor', () => {
      remember('token-a', alice1);

      expect(cache.get('token-a')).toBe(alice1);
    });

    it('does not return it for another token, even one differing in one character', () => {
      remember('token-a', alice1);

      expect(cache.get('token-b')).toBeUndefined();
      expect(cache.get('token-a ')).toBeUndefined();
    });

    it('keys entries by a hash, never by the token itself', () => {
      remember('eyJ.secret.token', alice1);

      expect(JSON.stringify([...(cache as any).entries.keys()])).not.toContain('secret');
      expect(VerifiedTokenCache.keyOf('eyJ.secret.token')).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    });
  });

  describe('at the token expiry', () => {
    it('returns the entry until the second before', () => {
      remember('token-a', alice1);
      now = EXP * 1000 - 1;

      expect(cache.get('token-a')).toBe(alice1);
    });

    it('never returns it at or past exp, and forgets it', () => {
      remember('token-a', alice1);
      now = EXP * 1000;

      expect(cache.get('token-a')).toBeUndefined();
      expect(cache.size).toBe(0);
    });

    it('does not store a token that has already expired', () => {
      remember('token-a', alice1, T0 / 1000 - 1);

      expect(cache.size).toBe(0);
    });
  });

  describe('when full', () => {
    it('drops the least recently used entry', () => {
      remember('token-1', alice1);
      remember('token-2', alice2);
      remember('token-3', bob);
      cache.get('token-1');

      remember('token-4', bob);

      expect(cache.size).toBe(3);
      expect(cache.get('token-2')).toBeUndefined();
      expect(cache.get('token-1')).toBe(alice1);
      expect(cache.get('token-4')).toBe(bob);
    });

    it('keeps the revocation indexes in step with what it dropped', () => {
      remember('token-1', alice1);
      remember('token-2', alice2);
      remember('token-3', bob);
      remember('token-4', bob);

      expect(cache.evictUser(ALICE)).toBe(1);
      expect(cache.size).toBe(2);
    });
  });

  describe(VerifiedTokenCache.prototype.evictSession.name, () => {
    it("drops every token of that session and only that session's", () => {
      remember('a1-first', alice1);
      remember('a1-second', alice1);
      remember('a2', alice2);

      expect(cache.evictSession(SESSION_A1)).toBe(2);
      expect(cache.get('a1-first')).toBeUndefined();
      expect(cache.get('a1-second')).toBeUndefined();
      expect(cache.get('a2')).toBe(alice2);
    });

    it('drops nothing for an unknown session', () => {
      remember('a1', alice1);

      expect(cache.evictSession(SESSION_B)).toBe(0);
      expect(cache.size).toBe(1);
    });
  });

  describe(VerifiedTokenCache.prototype.evictUser.name, () => {
    it('drops the tokens of every session of that user', () => {
      remember('a1', alice1);
      remember('a2', alice2);
      remember('b', bob);

      expect(cache.evictUser(ALICE)).toBe(2);
      expect(cache.get('a1')).toBeUndefined();
      expect(cache.get('a2')).toBeUndefined();
      expect(cache.get('b')).toBe(bob);
    });
  });

  describe('when an eviction happens while a token is being verified', () => {
    it('does not store the result, so the revocation cannot be undone', () => {
      const stamp = cache.stamp();
      cache.evictSession(SESSION_A1);

      cache.set('a1', alice1, EXP, stamp);

      expect(cache.get('a1')).toBeUndefined();
    });
  });

  describe('with a capacity of 0', () => {
    it('remembers nothing', () => {
      const off = new VerifiedTokenCache(0, () => now);
      off.set('a1', alice1, EXP, off.stamp());

      expect(off.get('a1')).toBeUndefined();
      expect(off.size).toBe(0);
    });
  });
});
