import { Body, Controller, Delete, Get, HttpCode, Param, Patch, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';

import { type Actor, ErrorBody, uuidParam } from '@portcullis/core';
import { BearerAuth, CurrentActor, Roles } from '@portcullis/security';

import { SessionsService } from '../tokens/sessions.service';
import { AccountPage, AccountPageQuery, AccountView, SetRolesDto } from './account.dto';
import { AccountsService } from './accounts.service';

@ApiTags('auth: administration')
@BearerAuth()
@Roles('admin')
@Controller('auth/users')
export class UsersController {
  constructor(
    private readonly accounts: AccountsService,
    private readonly sessions: SessionsService,
  ) {}

  @Get()
  @ApiOperation({ summary: 'Every account, oldest first, a page at a time' })
  @ApiOkResponse({ type: AccountPage })
  @ApiBadRequestResponse({ type: ErrorBody })
  list(@Query() page: AccountPageQuery): Promise<AccountPage> {
    return this.accounts.listAccounts(page);
  }

  @Patch(':id/roles')
  @ApiOperation({
    summary: "Set an account's roles; its sessions are revoked so the change applies at once",
  })
  @ApiOkResponse({ type: AccountView })
  @ApiNotFoundResponse({ type: ErrorBody })
  @ApiConflictResponse({ type: ErrorBody, description: 'The last admin cannot be demoted' })
  setRoles(
    @CurrentActor() actor: Actor,
    @Param('id', uuidParam()) id: string,
    @Body() body: SetRolesDto,
  ): Promise<AccountView> {
    return this.accounts.setRoles(actor, id, body.roles);
  }

  @Delete(':id/sessions')
  @HttpCode(204)
  @ApiOperation({ summary: 'Revoke every session of an account, everywhere' })
  @ApiNoContentResponse()
  @ApiNotFoundResponse({ type: ErrorBody })
  async revokeSessions(@Param('id', uuidParam()) id: string): Promise<void> {
    await this.accounts.describe(id);
    await this.sessions.revokeSessions(id, 'admin');
  }
}
