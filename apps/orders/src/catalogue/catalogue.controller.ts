import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';

import { Public } from '@portcullis/security';

import { Catalogue } from './catalogue';

export class ProductView {
  @ApiProperty({ example: 'KEY-001' }) sku!: string;
  @ApiProperty({ example: 'Brass padlock' }) name!: string;
  @ApiProperty({ example: 1299, description: 'Minor units' }) unitPriceCents!: number;
  @ApiProperty({ example: 'EUR' }) currency!: string;
}

@ApiTags('catalogue')
@Controller('products')
export class CatalogueController {
  constructor(private readonly catalogue: Catalogue) {}

  @Get()
  @Public()
  @ApiOperation({ summary: 'The product catalogue; prices are in minor units' })
  @ApiOkResponse({ type: ProductView, isArray: true })
  async list(): Promise<ProductView[]> {
    const products = await this.catalogue.active();
    return products.map(({ sku, name, unitPriceCents, currency }) => ({
      sku,
      name,
      unitPriceCents,
      currency,
    }));
  }
}
