import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import type { FastifyRequest } from 'fastify';
import { ExtractJwt, Strategy } from 'passport-jwt';

import { isRole } from '@portcullis/contracts';
import { APP_CONFIG, type Actor, type AppConfig } from '@portcullis/core';

import { TOKEN_ALGORITHM, TokenKeyStore } from './token-key-store';

export const ACCESS_TOKEN_STRATEGY = 'access-token';

/**
 * Reads the bearer token of a request exactly as the strategy does, so that whatever caches a
 * verified token keys it by the very string that was verified.
 */
export const extractAccessToken: (request: unknown) => string | null =
  ExtractJwt.fromAuthHeaderAsBearerToken() as (request: unknown) => string | null;

/** Where the strategy leaves the verified token's `exp` (seconds) on the request. */
export const ACCESS_TOKEN_EXPIRY = Symbol('accessTokenExpiry');

/** A request after the strategy has verified its token. */
export interface VerifiedTokenRequest {
  [ACCESS_TOKEN_EXPIRY]?: number;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

interface AccessTokenClaims {
  sub?: unknown;
  sid?: unknown;
  roles?: unknown;
  exp?: unknown;
}

/**
 * Verifies bearer access tokens with `passport-jwt`: RS256 only, the issuer and audience
 * pinned, the key chosen by `kid` from auth's published keys.
 */
@Injectable()
export class AccessTokenStrategy extends PassportStrategy(Strategy, ACCESS_TOKEN_STRATEGY) {
  constructor(@Inject(TokenKeyStore) keys: TokenKeyStore, @Inject(APP_CONFIG) config: AppConfig) {
    super({
      jwtFromRequest: extractAccessToken,
      passReqToCallback: true,
      algorithms: [TOKEN_ALGORITHM],
      issuer: config.tokenIssuer,
      audience: config.tokenAudience,
      ignoreExpiration: false,
      jsonWebTokenOptions: { maxAge: `${config.accessTokenTtlSeconds + 60}s`, clockTolerance: 5 },
      secretOrKeyProvider: (
        _request: FastifyRequest,
        rawJwt: string,
        done: (error: unknown, key?: unknown) => void,
      ) => {
        keys.keyForToken(rawJwt).then(
          (key) => done(null, key),
          (error: unknown) => done(error),
        );
      },
    } as never);
  }

  /**
   * Turns verified claims into the actor; a token without well-formed claims is refused. The
   * token's expiry is left on the request for the verified-token cache.
   */
  validate(request: VerifiedTokenRequest, claims: AccessTokenClaims): Actor | false {
    const { sub, sid, roles, exp } = claims;
    if (typeof sub !== 'string' || !UUID.test(sub)) return false;
    if (typeof sid !== 'string' || !UUID.test(sid)) return false;
    if (!Array.isArray(roles) || roles.length > 8 || !roles.every(isRole)) return false;
    if (typeof exp !== 'number' || !Number.isSafeInteger(exp)) return false;
    request[ACCESS_TOKEN_EXPIRY] = exp;
    return { id: sub, sessionId: sid, roles };
  }
}
