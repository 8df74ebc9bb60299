import type { MigrationInterface, QueryRunner } from 'typeorm';

const PRODUCTS: Array<[sku: string, name: string, unitPriceCents: number]> = [
  ['KEY-001', 'Brass padlock', 1_299],
  ['KEY-002', 'Hardened steel chain, 1 m', 2_450],
  ['KEY-003', 'Key cabinet, 20 hooks', 4_999],
  ['GATE-001', 'Portcullis winch', 89_900],
  ['GATE-002', 'Iron gate hinge (pair)', 3_575],
  ['LOCK-001', 'Smart deadbolt', 14_900],
];

export class SeedCatalogue1764806500001 implements MigrationInterface {
  name = 'SeedCatalogue1764806500001';

  async up(db: QueryRunner): Promise<void> {
    for (const [sku, name, price] of PRODUCTS) {
      await db.query(
        `INSERT INTO orders.products (sku, name, unit_price_cents, currency)
         VALUES ($1, $2, $3, 'EUR')`,
        [sku, name, price],
      );
    }
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DELETE FROM orders.products WHERE sku = ANY($1)`, [
      PRODUCTS.map(([sku]) => sku),
    ]);
  }
}
