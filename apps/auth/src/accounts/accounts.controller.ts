import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';

import { type Actor, ErrorBody } from '@portcullis/core';
import { BearerAuth, CurrentActor, Public } from '@portcullis/security';

import { AccountView, LoginDto, RegisterDto, TokenPairView } from './account.dto';
import { AccountsService } from './accounts.service';

@ApiTags('auth')
@Controller('auth')
export class AccountsController {
  constructor(private readonly accounts: AccountsService) {}

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
  login(@Body() body: LoginDto): Promise<TokenPairView> {
    return this.accounts.login(body);
  }

  @Get('me')
  @BearerAuth()
  @ApiOperation({ summary: 'The account of the access token' })
  @ApiOkResponse({ type: AccountView })
  me(@CurrentActor() actor: Actor): Promise<AccountView> {
    return this.accounts.describe(actor.id);
  }
}
