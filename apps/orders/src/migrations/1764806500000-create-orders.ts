import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateOrders1764806500000 implements MigrationInterface {
  name = 'CreateOrders1764806500000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE orders.products (
        sku varchar(32) PRIMARY KEY,
        name varchar(120) NOT NULL,
        unit_price_cents integer NOT NULL CHECK (unit_price_cents > 0),
        currency char(3) NOT NULL,
        active boolean NOT NULL DEFAULT true
      )`);
    await db.query(`
      CREATE TABLE orders.orders (
        id uuid PRIMARY KEY,
        customer_id uuid NOT NULL,
        status varchar(24) NOT NULL
          CHECK (status IN ('pending_payment', 'paid', 'cancelled')),
        total_cents bigint NOT NULL CHECK (total_cents > 0),
        currency char(3) NOT NULL,
        idempotency_key varchar(255),
        request_hash char(64),
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT orders_idempotency UNIQUE (customer_id, idempotency_key)
      )`);
    await db.query(`CREATE INDEX orders_customer_idx ON orders.orders (customer_id, created_at)`);
    await db.query(`
      CREATE TABLE orders.order_lines (
        order_id uuid NOT NULL REFERENCES orders.orders (id) ON DELETE CASCADE,
        line_no smallint NOT NULL,
        sku varchar(32) NOT NULL,
        name varchar(120) NOT NULL,
        unit_price_cents integer NOT NULL,
        quantity integer NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
        line_total_cents bigint NOT NULL,
        PRIMARY KEY (order_id, line_no)
      )`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE orders.order_lines`);
    await db.query(`DROP TABLE orders.orders`);
    await db.query(`DROP TABLE orders.products`);
  }
}
