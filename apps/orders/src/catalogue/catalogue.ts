import { Injectable } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { Repository } from 'typeorm';

import { Product } from './product.entity';

/** How long a process prices from the catalogue it read, before reading it again. */
export const CATALOGUE_TTL_MS = 30_000;

/**
 * The active products, read from the database at most once per {@link CATALOGUE_TTL_MS} and
 * shared by every request of the process: pricing an order and listing the catalogue then
 * cost no query. The catalogue changes only through migrations, so a change reaches every
 * instance within that time. A failed read is not kept.
 */
@Injectable()
export class Catalogue {
  private cached?: { readonly products: Promise<readonly Product[]>; readonly until: number };

  constructor(
    @InjectRepository(Product, 'orders') private readonly products: Repository<Product>,
  ) {}

  /** Active products, ordered by sku. Callers must not change them. */
  active(): Promise<readonly Product[]> {
    const now = Date.now();
    if (this.cached && now < this.cached.until) return this.cached.products;
    const products = this.products.find({ where: { active: true }, order: { sku: 'ASC' } });
    const cached = { products, until: now + CATALOGUE_TTL_MS };
    this.cached = cached;
    products.catch(() => {
      if (this.cached === cached) this.cached = undefined;
    });
    return products;
  }
}
