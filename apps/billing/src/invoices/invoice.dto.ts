import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsObject, IsOptional, IsString, IsUUID, Matches, ValidateNested } from 'class-validator';

import { INVOICE_STATUSES, type InvoiceStatus } from './invoice.entity';

export class InvoiceQueryDto {
  @ApiPropertyOptional({ format: 'uuid', description: 'Only the invoice of this order' })
  @IsOptional()
  @IsUUID('all', { message: 'orderId must be a UUID' })
  orderId?: string;
}

export class PaymentMethodDto {
  @ApiProperty({
    example: 'tok_visa',
    description: 'A payment provider token, never a card number',
  })
  @IsString()
  @Matches(/^tok_[A-Za-z0-9_]{1,64}$/, { message: 'token must be a payment provider token' })
  token!: string;
}

export class PayInvoiceDto {
  @ApiProperty({ type: PaymentMethodDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PaymentMethodDto)
  paymentMethod!: PaymentMethodDto;
}

export class InvoiceView {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) orderId!: string;
  @ApiProperty({ format: 'uuid' }) customerId!: string;
  @ApiProperty({ enum: INVOICE_STATUSES }) status!: InvoiceStatus;
  @ApiProperty({ description: 'Minor units' }) amountCents!: number;
  @ApiProperty({ example: 'EUR' }) currency!: string;
  @ApiProperty() createdAt!: string;
  @ApiProperty({ nullable: true, type: String }) paidAt!: string | null;
}
