import { Body, Controller, Get, HttpCode, Param, Post } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiConflictResponse,
  ApiCreatedResponse,
  ApiHeader,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiServiceUnavailableResponse,
  ApiTags,
  ApiUnprocessableEntityResponse,
} from '@nestjs/swagger';

import { type Actor, ErrorBody, IdempotencyKey, uuidParam } from '@portcullis/core';
import { BearerAuth, CurrentActor, Roles } from '@portcullis/security';

import { CreateOrderDto, OrderView } from './order.dto';
import { OrdersService } from './orders.service';

@ApiTags('orders')
@BearerAuth()
@Controller('orders')
export class OrdersController {
  constructor(private readonly orders: OrdersService) {}

  @Post()
  @Roles('customer')
  @ApiOperation({ summary: 'Place an order; lines are priced from the catalogue' })
  @ApiHeader({
    name: 'Idempotency-Key',
    required: false,
    description: 'Retrying with the same key returns the first order instead of a new one',
  })
  @ApiCreatedResponse({ type: OrderView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiUnprocessableEntityResponse({ type: ErrorBody, description: 'Unknown sku or reused key' })
  place(
    @CurrentActor() actor: Actor,
    @Body() body: CreateOrderDto,
    @IdempotencyKey() idempotencyKey?: string,
  ): Promise<OrderView> {
    return this.orders.place(actor, body, idempotencyKey);
  }

  @Get()
  @Roles('customer', 'admin')
  @ApiOperation({ summary: 'Your orders, newest first (every order for admins)' })
  @ApiOkResponse({ type: OrderView, isArray: true })
  list(@CurrentActor() actor: Actor): Promise<OrderView[]> {
    return this.orders.list(actor);
  }

  @Get(':id')
  @Roles('customer', 'admin')
  @ApiOperation({ summary: "One order; another customer's order is 404" })
  @ApiOkResponse({ type: OrderView })
  @ApiBadRequestResponse({ type: ErrorBody })
  @ApiNotFoundResponse({ type: ErrorBody })
  get(@CurrentActor() actor: Actor, @Param('id', uuidParam()) id: string): Promise<OrderView> {
    return this.orders.get(actor, id);
  }

  @Post(':id/cancel')
  @HttpCode(200)
  @Roles('customer', 'admin')
  @ApiOperation({ summary: 'Cancel an unpaid order; its invoice becomes void' })
  @ApiOkResponse({ type: OrderView })
  @ApiNotFoundResponse({ type: ErrorBody })
  @ApiConflictResponse({ type: ErrorBody, description: 'The order is already paid' })
  @ApiServiceUnavailableResponse({ type: ErrorBody })
  cancel(@CurrentActor() actor: Actor, @Param('id', uuidParam()) id: string): Promise<OrderView> {
    return this.orders.cancel(actor, id);
  }
}
