import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsObject,
  IsOptional,
  IsString,
  IsUUID,
  Length,
  Matches,
  MaxLength,
  ValidateNested,
} from 'class-validator';

import { type BillingDetails, INVOICE_STATUSES, type InvoiceStatus } from './invoice.entity';

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

/** Who pays. Stored encrypted, bound to the invoice; shown only to the invoice's readers. */
export class BillingDetailsDto implements BillingDetails {
  @ApiProperty({ example: 'Ada Lovelace', minLength: 1, maxLength: 200 })
  @IsString()
  @Length(1, 200)
  name!: string;

  @ApiPropertyOptional({ type: [String], maxItems: 4, example: ['12 St James Square'] })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(4)
  @IsString({ each: true })
  @MaxLength(200, { each: true })
  addressLines?: string[];

  @ApiPropertyOptional({ example: 'SW1Y 4JH', maxLength: 20 })
  @IsOptional()
  @IsString()
  @MaxLength(20)
  postalCode?: string;

  @ApiPropertyOptional({ example: 'London', maxLength: 100 })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  city?: string;

  @ApiPropertyOptional({ example: 'GB', description: 'ISO 3166-1 alpha-2 country code' })
  @IsOptional()
  @Matches(/^[A-Z]{2}$/, { message: 'country must be an ISO 3166-1 alpha-2 code' })
  country?: string;

  @ApiPropertyOptional({ example: 'GB123456789', maxLength: 32 })
  @IsOptional()
  @IsString()
  @MaxLength(32)
  taxId?: string;
}

export class PayInvoiceDto {
  @ApiProperty({ type: PaymentMethodDto })
  @IsObject()
  @ValidateNested()
  @Type(() => PaymentMethodDto)
  paymentMethod!: PaymentMethodDto;

  @ApiPropertyOptional({
    type: BillingDetailsDto,
    description: 'Optional; kept with the paid invoice, encrypted',
  })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => BillingDetailsDto)
  billingDetails?: BillingDetailsDto;
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
  @ApiPropertyOptional({ type: BillingDetailsDto, description: 'Present when given at payment' })
  billingDetails?: BillingDetails;
}
