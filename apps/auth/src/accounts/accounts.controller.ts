import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiTooManyRequestsResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';

import { type Actor, ClientIp, ErrorBody } from '@portcullis/core';
import { BearerAuth, CurrentActor, Public } from '@portcullis/security';

import { SessionsService } from '../tokens/sessions.service';
import { AccountView, LoginDto, RefreshDto, RegisterDto, TokenPairView } from './account.dto';
import { AccountsService } from './accounts.service';

@ApiTags('auth')
@Controller('auth')
export class AccountsController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly sessions: SessionsService,
  ) {}

  @Post('register')
  @Public()
  @ApiOperation({ summary: 'Create a customer account' })
  @ApiCreatedResponse({ type: AccountView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiConflictResponse({ type: ErrorBody })
  register(@Body() body: RegisterDto): Promise<AccountView> {
    return this.accounts.register(body);
  }

  @Post('login')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange email and password for an access and a refresh token' })
  @ApiOkResponse({ type: TokenPairView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiUnauthorizedResponse({ type: ErrorBody, description: 'Unknown email or wrong password' })
  @ApiTooManyRequestsResponse({
    type: ErrorBody,
    description: 'Too many failures; see Retry-After',
  })
  login(@Body() body: LoginDto, @ClientIp() clientIp: string): Promise<TokenPairView> {
    return this.accounts.login(body, clientIp);
  }

  @Post('refresh')
  @Public()
  @HttpCode(200)
  @ApiOperation({ summary: 'Exchange a refresh token for a new pair; the old one is spent' })
  @ApiOkResponse({ type: TokenPairView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiUnauthorizedResponse({
    type: ErrorBody,
    description: 'Invalid, expired or spent; a spent token also revokes its session',
  })
  @ApiTooManyRequestsResponse({ type: ErrorBody })
  refresh(@Body() body: RefreshDto, @ClientIp() clientIp: string): Promise<TokenPairView> {
    return this.sessions.refresh(body.refreshToken, clientIp);
  }

  @Post('logout')
  @HttpCode(204)
  @BearerAuth()
  @ApiOperation({ summary: 'End this session: its tokens are refused by every service' })
  @ApiNoContentResponse()
  async logout(@CurrentActor() actor: Actor): Promise<void> {
    await this.sessions.logout(actor);
  }

  @Get('me')
  @BearerAuth()
  @ApiOperation({ summary: 'The account of the access token' })
  @ApiOkResponse({ type: AccountView })
  me(@CurrentActor() actor: Actor): Promise<AccountView> {
    return this.accounts.describe(actor.id);
  }
}
