import { Column, Entity, PrimaryColumn } from 'typeorm';

@Entity({ schema: 'orders', name: 'products' })
export class Product {
  @PrimaryColumn({ type: 'varchar', length: 32 })
  sku!: string;

  @Column({ type: 'varchar', length: 120 })
  name!: string;

  @Column({ name: 'unit_price_cents', type: 'integer' })
  unitPriceCents!: number;

  @Column({ type: 'char', length: 3 })
  currency!: string;

  @Column({ type: 'boolean', default: true })
  active!: boolean;
}
