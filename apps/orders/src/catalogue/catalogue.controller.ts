import { Controller, Get } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { ApiOkResponse, ApiOperation, ApiProperty, ApiTags } from '@nestjs/swagger';
import { Repository } from 'typeorm';

import { Public } from '@portcullis/security';

import { Product } from './product.entity';

export class ProductView {
  @ApiProperty({ example: 'KEY-001' }) sku!: string;
  @ApiProperty({ example: 'Brass padlock' }) name!: string;
  @ApiProperty({ example: 1299, description: 'Minor units' }) unitPriceCents!: number;
  @ApiProperty({ example: 'EUR' }) currency!: string;
}

@ApiTags('catalogue')
@Controller('products')
export class CatalogueController {
  constructor(
    @InjectRepository(Product, 'orders') private readonly products: Repository<Product>,
  ) {}

  @Get()
  @Public()
  @ApiOperation({ summary: 'The product catalogue; prices are in minor units' })
  @ApiOkResponse({ type: ProductView, isArray: true })
  async list(): Promise<ProductView[]> {
    const products = await this.products.find({ where: { active: true }, order: { sku: 'ASC' } });
    return products.map(({ sku, name, unitPriceCents, currency }) => ({
      sku,
      name,
      unitPriceCents,
      currency,
    }));
  }
}
