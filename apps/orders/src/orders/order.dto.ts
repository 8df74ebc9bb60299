import { ApiProperty } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  ArrayMinSize,
  IsArray,
  IsInt,
  IsString,
  Matches,
  Max,
  Min,
  ValidateNested,
} from 'class-validator';

import { ORDER_STATUSES, type OrderStatus } from './order.entity';

export const MAX_LINES = 50;
export const MAX_QUANTITY = 1000;

export class OrderItemDto {
  @ApiProperty({ example: 'KEY-001', pattern: '^[A-Z0-9-]{1,32}$' })
  @IsString()
  @Matches(/^[A-Z0-9-]{1,32}$/, { message: 'sku must be an upper-case catalogue code' })
  sku!: string;

  @ApiProperty({ example: 2, minimum: 1, maximum: MAX_QUANTITY })
  @IsInt()
  @Min(1)
  @Max(MAX_QUANTITY)
  quantity!: number;
}

export class CreateOrderDto {
  @ApiProperty({ type: OrderItemDto, isArray: true, minItems: 1, maxItems: MAX_LINES })
  @IsArray()
  @ArrayMinSize(1)
  @ArrayMaxSize(MAX_LINES)
  @ValidateNested({ each: true })
  @Type(() => OrderItemDto)
  items!: OrderItemDto[];
}

export class OrderLineView {
  @ApiProperty() sku!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'Minor units' }) unitPriceCents!: number;
  @ApiProperty() quantity!: number;
  @ApiProperty({ description: 'Minor units' }) lineTotalCents!: number;
}

export class OrderView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) customerId!: string;
  @ApiProperty({ enum: ORDER_STATUSES }) status!: OrderStatus;
  @ApiProperty({ type: OrderLineView, isArray: true }) lines!: OrderLineView[];
  @ApiProperty({ description: 'Minor units' }) totalCents!: number;
  @ApiProperty({ example: 'EUR' }) currency!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty() updatedAt!: string;
}
