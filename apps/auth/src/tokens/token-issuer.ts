import { Inject, Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import jwt from 'jsonwebtoken';
import { DataSource } from 'typeorm';

import { APP_CONFIG, type AppConfig } from '@portcullis/core';

import type { Account } from '../accounts/account.entity';
import { SigningKeys } from '../keys/signing-keys';
import { RefreshToken } from './refresh-token.entity';
import { Session } from './session.entity';

export interface TokenPair {
  accessToken: string;
  refreshToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
}

/** Hash under which a refresh token is stored; the token itself is never kept. */
export function refreshTokenHash(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Starts sessions and issues their tokens: short-lived RS256 access tokens and opaque
 * 256-bit refresh tokens.
 */
@Injectable()
export class TokenIssuer {
  constructor(
    @InjectDataSource('auth') private readonly db: DataSource,
    private readonly keys: SigningKeys,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async startSession(account: Account): Promise<TokenPair> {
    const now = new Date();
    const sessionId = randomUUID();
    const refreshToken = randomBytes(32).toString('base64url');

    await this.db.transaction(async (tx) => {
      await tx.insert(Session, {
        id: sessionId,
        accountId: account.id,
        expiresAt: new Date(now.getTime() + this.config.refreshTokenTtlSeconds * 1000),
        revokedAt: null,
      });
      await tx.insert(RefreshToken, {
        tokenHash: refreshTokenHash(refreshToken),
        sessionId,
        issuedAt: now,
        expiresAt: new Date(now.getTime() + this.config.refreshTokenTtlSeconds * 1000),
        spentAt: null,
      });
    });

    return {
      accessToken: this.issueAccessToken(account, sessionId),
      refreshToken,
      tokenType: 'Bearer',
      expiresIn: this.config.accessTokenTtlSeconds,
    };
  }

  issueAccessToken(account: Pick<Account, 'id' | 'roles'>, sessionId: string): string {
    const key = this.keys.current();
    return jwt.sign({ sid: sessionId, roles: account.roles }, key.privateKey, {
      algorithm: 'RS256',
      keyid: key.kid,
      issuer: this.config.tokenIssuer,
      audience: this.config.tokenAudience,
      subject: account.id,
      jwtid: randomUUID(),
      expiresIn: this.config.accessTokenTtlSeconds,
    });
  }
}
