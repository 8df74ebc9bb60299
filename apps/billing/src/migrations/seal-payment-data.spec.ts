import { join } from 'node:path';

import {
  FieldEncryption,
  buildDataSourceOptions,
  closeEmbeddedDatabases,
  loadConfig,
  openServiceDataSource,
} from '@portcullis/core';
import { SecretFiles, ensureDevelopmentSecrets } from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { Invoice } from '../invoices/invoice.entity';
import { Payment } from '../payments/payment.entity';
import { CreateBilling1764806600000 } from './1764806600000-create-billing';
import { sealPaymentData } from './1764806900000-seal-payment-data';

const INVOICE = '6d0c3a52-3d5e-4b7e-9f43-5a8d3c2a4b11';

describe('the migration that seals payment data', () => {
  let directory: string;

  beforeAll(() => {
    directory = createTempDir('seal-payments');
  });

  afterAll(async () => {
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  });

  it('seals existing payment references and stored answers, and drops the plaintext', async () => {
    const config = loadConfig({
      DATA_DIR: join(directory, 'data'),
      SECRETS_DIR: join(directory, 'secrets'),
    });
    ensureDevelopmentSecrets(config.secretsDir, ['billing']);
    const encryption = await FieldEncryption.open(config, new SecretFiles(config.secretsDir));
    const before = await openServiceDataSource(
      buildDataSourceOptions(config, {
        service: 'billing',
        entities: [],
        migrations: [CreateBilling1764806600000],
      }),
    );
    await before.query(
      `INSERT INTO billing.invoices
         (id, order_id, customer_id, amount_cents, currency, status, payment_reference, paid_at)
       VALUES ($1, gen_random_uuid(), gen_random_uuid(), 1200, 'EUR', 'paid', 'sim_ch_legacy', now())`,
      [INVOICE],
    );
    await before.query(
      `INSERT INTO billing.payments (id, invoice_id, customer_id, idempotency_key, request_hash,
         outcome, response_status, response_body)
       VALUES (gen_random_uuid(), $1, gen_random_uuid(), 'k', repeat('0', 64), 'succeeded', 200,
         '{"id": "legacy", "status": "paid"}')`,
      [INVOICE],
    );
    await before.destroy();

    const after = await openServiceDataSource(
      buildDataSourceOptions(
        config,
        {
          service: 'billing',
          entities: [Invoice, Payment],
          migrations: [CreateBilling1764806600000],
          sealingMigrations: (fields) => [sealPaymentData(fields)],
        },
        encryption,
      ),
    );

    const raw = JSON.stringify(
      await after.query(`SELECT * FROM billing.invoices i JOIN billing.payments p
        ON p.invoice_id = i.id`),
    );
    expect(raw).not.toContain('sim_ch_legacy');
    expect(raw).not.toContain('legacy');
    expect(await after.getRepository(Invoice).findOneByOrFail({ id: INVOICE })).toMatchObject({
      paymentReference: 'sim_ch_legacy',
      billingDetails: null,
    });
    expect(
      (await after.getRepository(Payment).findOneByOrFail({ invoiceId: INVOICE })).responseBody,
    ).toEqual({ id: 'legacy', status: 'paid' });
    await after.destroy();
  }, 60_000);
});
