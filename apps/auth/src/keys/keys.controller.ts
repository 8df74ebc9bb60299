import { Body, Controller, Get, Header, HttpCode, Inject, Post } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import {
  ApiOkResponse,
  ApiOperation,
  ApiProperty,
  ApiPropertyOptional,
  ApiTags,
} from '@nestjs/swagger';
import { IsBoolean, IsOptional } from 'class-validator';

import { PublicJwk, type RevocationsReply, type TokenKeysReply } from '@portcullis/contracts';
import { APP_CONFIG, type AppConfig } from '@portcullis/core';
import type { VerifiedMessage } from '@portcullis/messaging';
import { BearerAuth, Public, Roles } from '@portcullis/security';

import { SessionsService } from '../tokens/sessions.service';

import { SigningKeys } from './signing-keys';

class JwksView {
  @ApiProperty({ type: PublicJwk, isArray: true })
  keys!: PublicJwk[];
}

class RotateKeysDto {
  @ApiPropertyOptional({
    description: 'Also withdraw the previous key at once (it may have leaked): its tokens die',
    default: false,
  })
  @IsOptional()
  @IsBoolean()
  withdrawPrevious?: boolean;
}

class RotatedKeysView {
  @ApiProperty({ description: 'The key id new tokens are signed with' }) kid!: string;
  @ApiProperty({ type: String, isArray: true }) withdrawnKids!: string[];
}

class OpenIdConfigurationView {
  @ApiProperty() issuer!: string;
  @ApiProperty() jwks_uri!: string;
  @ApiProperty({ isArray: true, type: String }) id_token_signing_alg_values_supported!: string[];
  @ApiProperty({ isArray: true, type: String }) token_endpoint_auth_methods_supported!: string[];
  @ApiProperty() token_endpoint!: string;
  @ApiProperty({ isArray: true, type: String }) grant_types_supported!: string[];
}

@ApiTags('keys')
@Controller()
export class KeysController {
  constructor(
    private readonly keys: SigningKeys,
    private readonly sessions: SessionsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post('auth/keys/rotate')
  @HttpCode(200)
  @BearerAuth()
  @Roles('admin')
  @ApiTags('auth: administration')
  @ApiOperation({ summary: 'Sign new tokens with a new key; earlier tokens stay valid' })
  @ApiOkResponse({ type: RotatedKeysView })
  rotate(@Body() body: RotateKeysDto): Promise<RotatedKeysView> {
    return this.keys.rotate(body.withdrawPrevious === true);
  }

  @Get('.well-known/jwks.json')
  @Public()
  @Header('cache-control', 'public, max-age=300')
  @ApiOperation({ summary: 'Public keys that verify access tokens' })
  @ApiOkResponse({ type: JwksView })
  jwks(): JwksView {
    return { keys: this.keys.publicKeys() };
  }

  @Get('.well-known/openid-configuration')
  @Public()
  @ApiOperation({ summary: 'Discovery document: issuer, JWKS location, algorithms' })
  @ApiOkResponse({ type: OpenIdConfigurationView })
  openIdConfiguration(): OpenIdConfigurationView {
    const base = this.config.publicUrl;
    return {
      issuer: this.config.tokenIssuer,
      jwks_uri: `${base}/.well-known/jwks.json`,
      token_endpoint: `${base}/auth/login`,
      id_token_signing_alg_values_supported: ['RS256'],
      token_endpoint_auth_methods_supported: ['none'],
      grant_types_supported: ['password', 'refresh_token'],
    };
  }

  /** Services learn the token keys over a signed request, so no key arrives unauthenticated. */
  @MessagePattern('auth.keys.query')
  publishKeys(@Payload() _message: VerifiedMessage): TokenKeysReply {
    return { keys: this.keys.publicKeys() };
  }

  /** Services catch up on revocations at start-up and after a missed event. */
  @MessagePattern('auth.revocations.query')
  async revocations(@Payload() _message: VerifiedMessage): Promise<RevocationsReply> {
    return { sessions: await this.sessions.stillRelevantRevocations() };
  }
}
