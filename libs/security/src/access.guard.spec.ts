import { generateKeyPairSync } from 'node:crypto';

import { jest } from '@jest/globals';
import { Controller, ForbiddenException, Get, Logger, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import jwt from 'jsonwebtoken';

import { SecurityEvents } from '@portcullis/audit';
import type { AppConfig } from '@portcullis/core';
import { VerifiedMessage } from '@portcullis/messaging';

import { fakeRequest, httpContext, rpcContext } from '../../../jest/execution-contexts';
import { AccessGuard } from './access.guard';
import { AccessTokenStrategy } from './access-token.strategy';
import { AccessTokenVerifier } from './access-token.verifier';
import { Public, Roles } from './decorators';
import { RevocationList } from './revocation-list';
import type { TokenKeyStore } from './token-key-store';
import { VerifiedTokenCache } from './verified-token-cache';

const ALICE = '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f';
const SESSION = '11111111-1111-4111-8111-111111111111';
const config = {
  tokenIssuer: 'urn:portcullis:auth',
  tokenAudience: 'urn:portcullis:api',
  accessTokenTtlSeconds: 900,
} as AppConfig;

@Controller('things')
class ThingsController {
  @Get('open')
  @Public()
  open(): void {}

  @Get()
  @Roles('customer', 'admin')
  list(): void {}

  @Get('admin')
  @Roles('admin')
  administer(): void {}
}

describe(AccessGuard.name, () => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const otherKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
  let keys: {
    keyForToken: jest.Mock<(token: string) => Promise<typeof publicKey>>;
    knownKeyFor: jest.Mock<(token: string) => undefined>;
  };
  let cache: VerifiedTokenCache;
  let revocations: RevocationList;
  let guard: AccessGuard;

  function token(claims: object = {}, key = privateKey, expiresIn = 900): string {
    return jwt.sign({ sid: SESSION, roles: ['customer'], ...claims }, key, {
      algorithm: 'RS256',
      keyid: 'key-1',
      issuer: config.tokenIssuer,
      audience: config.tokenAudience,
      subject: ALICE,
      expiresIn,
    });
  }

  const call = (handler: Handler, bearer?: string) => {
    const request = fakeRequest(bearer === undefined ? {} : { authorization: `Bearer ${bearer}` });
    const result = guard.canActivate(httpContext(request, ThingsController, handlerOf(handler)));
    return { request, result };
  };
  const onMessage = (data: unknown, handler: Handler) =>
    guard.canActivate(rpcContext(data, ThingsController, handlerOf(handler)));

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    keys = {
      keyForToken: jest.fn(() => Promise.resolve(publicKey)),
      knownKeyFor: jest.fn(() => undefined),
    };
    const strategy = new AccessTokenStrategy(keys as unknown as TokenKeyStore, config);
    cache = new VerifiedTokenCache(100);
    revocations = new RevocationList();
    guard = new AccessGuard(new Reflector(), new SecurityEvents(), cache, revocations, strategy);
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  describe('on a public route', () => {
    it('admits a request without a token', async () => {
      await expect(call('open').result).resolves.toBe(true);
    });
  });

  describe('on a guarded route', () => {
    it('refuses a request without a token', async () => {
      await expect(call('list').result).rejects.toThrow(UnauthorizedException);
    });

    it('admits a valid token and establishes the actor from it', async () => {
      const { request, result } = call('list', token());

      await expect(result).resolves.toBe(true);
      expect(request.user).toEqual({ id: ALICE, sessionId: SESSION, roles: ['customer'] });
    });

    it.each([
      ['signed by another key', () => token({}, otherKey)],
      ['with claims changed after signing', () => tamper(token(), { roles: ['admin'] })],
      ['expired', () => token({}, privateKey, -10)],
      ['with alg none', () => unsigned(token())],
    ])('refuses a token %s', async (_, make) => {
      await expect(call('list', make()).result).rejects.toThrow(UnauthorizedException);
    });

    it('refuses a customer on an admin route with 403', async () => {
      await expect(call('administer', token()).result).rejects.toThrow(ForbiddenException);
    });
  });

  describe('when the session is revoked', () => {
    it('refuses its token, even one answered from the cache before', async () => {
      const valid = token();
      await expect(call('list', valid).result).resolves.toBe(true);

      revocations.revoke(SESSION, Date.now() + 60_000);

      await expect(call('list', valid).result).rejects.toThrow(UnauthorizedException);
    });

    it('admits tokens of other sessions', async () => {
      revocations.revoke('00000000-0000-4000-8000-000000000000', Date.now() + 60_000);
      await expect(call('list', token()).result).resolves.toBe(true);
    });
  });

  describe('with the verified-token cache', () => {
    it('verifies a token once and answers repeats without a signature check', async () => {
      const valid = token();
      const verify = jest.spyOn(AccessTokenVerifier.prototype, 'verify');

      await call('list', valid).result;
      const { request, result } = call('list', valid);

      await expect(result).resolves.toBe(true);
      expect(request.user).toEqual({ id: ALICE, sessionId: SESSION, roles: ['customer'] });
      expect(keys.keyForToken).toHaveBeenCalledTimes(1);
      expect(verify).toHaveBeenCalledTimes(1);
      expect(cache.size).toBe(1);
    });

    it('still refuses a tampered copy of a cached token', async () => {
      const valid = token();
      await call('list', valid).result;

      const forged = tamper(valid, { roles: ['admin'] });

      await expect(call('administer', forged).result).rejects.toThrow(UnauthorizedException);
    });

    it('checks roles on every hit', async () => {
      const valid = token();
      await call('list', valid).result;

      await expect(call('administer', valid).result).rejects.toThrow(ForbiddenException);
    });

    it('verifies in full again once the session was evicted', async () => {
      const valid = token();
      await call('list', valid).result;

      cache.evictSession(SESSION);
      await call('list', valid).result;

      expect(keys.keyForToken).toHaveBeenCalledTimes(2);
    });

    it('does not cache a refused token', async () => {
      await call('list', token({}, otherKey)).result.catch(() => undefined);

      expect(cache.size).toBe(0);
    });
  });

  describe('on a message handler', () => {
    const message = (roles: string[]) =>
      new VerifiedMessage(
        'id',
        'event',
        'orders.created',
        'orders',
        0,
        'c',
        {
          id: ALICE,
          roles,
        },
        {},
      );

    it('refuses data that the transport did not verify', async () => {
      const forged = { actor: { id: ALICE, roles: ['admin'] }, payload: {} };

      await expect(onMessage(forged, 'list')).resolves.toBe(false);
    });

    it('admits a verified message whose actor holds a named role', async () => {
      await expect(onMessage(message(['customer']), 'list')).resolves.toBe(true);
    });

    it('refuses a verified message whose actor lacks the role', async () => {
      await expect(onMessage(message(['customer']), 'administer')).resolves.toBe(false);
    });

    it('does not treat @Public() as a way around envelope verification', async () => {
      await expect(onMessage({}, 'open')).resolves.toBe(false);
    });
  });
});

type Handler = 'open' | 'list' | 'administer';

function handlerOf(name: Handler): (...args: never[]) => unknown {
  const handlers = ThingsController.prototype as unknown as Record<Handler, () => void>;
  return handlers[name];
}

/** The token with its claims replaced, keeping the original signature. */
function tamper(jwtText: string, changes: object): string {
  const [header, payload, signature] = jwtText.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as object;
  const forged = Buffer.from(JSON.stringify({ ...claims, ...changes })).toString('base64url');
  return `${header}.${forged}.${signature}`;
}

/** The token's claims under an `alg: none` header, without a signature. */
function unsigned(jwtText: string): string {
  const [, payload] = jwtText.split('.');
  return `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${payload}.`;
}
