import { Controller, Get, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiForbiddenResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';

import type { ChainVerification } from '@portcullis/audit';
import { ErrorBody } from '@portcullis/core';
import { BearerAuth, Roles } from '@portcullis/security';

import { AuditEventsPage, AuditEventsQuery, ChainVerificationView } from './audit-trail.dto';
import { AuditTrailService } from './audit-trail.service';

@ApiTags('audit')
@BearerAuth()
@Roles('auditor', 'admin')
@Controller('audit')
export class AuditTrailController {
  constructor(private readonly trail: AuditTrailService) {}

  @Get('events')
  @ApiOperation({
    summary: 'Records of the central audit trail, newest first (by sequence), a page at a time',
  })
  @ApiOkResponse({ type: AuditEventsPage })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiForbiddenResponse({ type: ErrorBody })
  events(@Query() query: AuditEventsQuery): Promise<AuditEventsPage> {
    return this.trail.find(query);
  }

  @Get('verify')
  @ApiOperation({ summary: 'Walk the whole hash chain and name the first broken record' })
  @ApiOkResponse({ type: ChainVerificationView })
  @ApiForbiddenResponse({ type: ErrorBody })
  verify(): Promise<ChainVerification> {
    return this.trail.verify();
  }
}
