import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateBilling1764806600000 implements MigrationInterface {
  name = 'CreateBilling1764806600000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`
      CREATE TABLE billing.invoices (
        id uuid PRIMARY KEY,
        order_id uuid NOT NULL UNIQUE,
        customer_id uuid NOT NULL,
        amount_cents bigint NOT NULL CHECK (amount_cents > 0),
        currency char(3) NOT NULL,
        status varchar(8) NOT NULL CHECK (status IN ('open', 'paid', 'void')),
        payment_reference varchar(128),
        created_at timestamptz NOT NULL DEFAULT now(),
        paid_at timestamptz
      )`);
    await db.query(
      `CREATE INDEX invoices_customer_idx ON billing.invoices (customer_id, created_at)`,
    );
    await db.query(`
      CREATE TABLE billing.payments (
        id uuid PRIMARY KEY,
        invoice_id uuid NOT NULL REFERENCES billing.invoices (id),
        customer_id uuid NOT NULL,
        idempotency_key varchar(255) NOT NULL,
        request_hash char(64) NOT NULL,
        outcome varchar(16) NOT NULL CHECK (outcome IN ('succeeded', 'declined')),
        response_status smallint NOT NULL,
        response_body jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT payments_idempotency UNIQUE (customer_id, idempotency_key)
      )`);
    await db.query(`
      CREATE UNIQUE INDEX payments_one_success ON billing.payments (invoice_id)
        WHERE outcome = 'succeeded'`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query(`DROP TABLE billing.payments`);
    await db.query(`DROP TABLE billing.invoices`);
  }
}
