import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiResponse,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';

import { type Actor, ErrorBody, IdempotencyKey, uuidParam } from '@portcullis/core';
import { BearerAuth, CurrentActor, Roles } from '@portcullis/security';

import { InvoiceQueryDto, InvoiceView, PayInvoiceDto } from './invoice.dto';
import { InvoicesService } from './invoices.service';

@ApiTags('billing')
@BearerAuth()
@Controller('billing/invoices')
export class InvoicesController {
  constructor(private readonly invoices: InvoicesService) {}

  @Get()
  @Roles('customer', 'admin')
  @ApiOperation({ summary: 'Your invoices, newest first (every invoice for admins)' })
  @ApiOkResponse({ type: InvoiceView, isArray: true })
  @ApiBadRequestResponse({ type: ErrorBody })
  list(@CurrentActor() actor: Actor, @Query() query: InvoiceQueryDto): Promise<InvoiceView[]> {
    return this.invoices.list(actor, query.orderId);
  }

  @Get(':id')
  @Roles('customer', 'admin')
  @ApiOperation({ summary: "One invoice; another customer's invoice is 404" })
  @ApiOkResponse({ type: InvoiceView })
  @ApiNotFoundResponse({ type: ErrorBody })
  get(@CurrentActor() actor: Actor, @Param('id', uuidParam()) id: string): Promise<InvoiceView> {
    return this.invoices.get(actor, id);
  }

  @Post(':id/pay')
  @HttpCode(200)
  @Roles('customer')
  @ApiOperation({ summary: 'Pay your invoice with a provider token; retries are safe' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: true,
    description:
      'Scoped to you: a retry with the same key returns the first answer and charges once',
  })
  @ApiOkResponse({ type: InvoiceView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiResponse({ status: 402, type: ErrorBody, description: 'The payment was declined' })
  @ApiNotFoundResponse({ type: ErrorBody })
  @ApiConflictResponse({ type: ErrorBody, description: 'Already paid, or void' })
  @ApiUnprocessableEntityResponse({
    type: ErrorBody,
    description: 'Key reused for another request',
  })
  pay(
    @CurrentActor() actor: Actor,
    @Param('id', uuidParam()) id: string,
    @Body() body: PayInvoiceDto,
    @IdempotencyKey(true) idempotencyKey: string,
  ): Promise<InvoiceView> {
    return this.invoices.pay(actor, id, body, idempotencyKey);
  }
}
