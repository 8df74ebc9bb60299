import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';

import { jest } from '@jest/globals';
import {
  type DataSource,
  Entity,
  In,
  type MigrationInterface,
  PrimaryColumn,
  type QueryRunner,
} from 'typeorm';

import {
  FieldCipher,
  type KeyringFile,
  SECRET_NAMES,
  SecretFiles,
  addKeyringVersion,
  ensureDevelopmentSecrets,
} from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { loadConfig } from '../config/app-config';
import { buildDataSourceOptions } from '../database/data-source-options';
import { openServiceDataSource } from '../database/database.module';
import { closeEmbeddedDatabases } from '../database/pglite-pool';
import { FieldEncryption } from './field-encryption';
import { resealTable, versionCounts } from './resealing';
import { BlindIndexColumn, SealedColumn } from './sealed-column';
import { SealedFieldError } from './sealed-rows';
import { sealPlaintextColumn } from './sealing-migration';

const PURPOSE = 'billing.customers.email';

@Entity({ schema: 'billing', name: 'customers' })
class Customer {
  @PrimaryColumn('uuid')
  id!: string;

  email!: string;

  @SealedColumn({ name: 'email_sealed', plaintext: 'email' })
  emailSealed!: Buffer;

  @BlindIndexColumn({ name: 'email_index', source: 'email', purpose: PURPOSE, unique: true })
  emailIndex!: Buffer;

  details!: { name: string; lines: string[] } | null;

  @SealedColumn({ name: 'details_sealed', plaintext: 'details', kind: 'json', nullable: true })
  detailsSealed!: Buffer | null;
}

class CreateCustomers1700000000000 implements MigrationInterface {
  readonly name = 'CreateCustomers1700000000000';

  async up(db: QueryRunner): Promise<void> {
    await db.query(`CREATE TABLE billing.customers (
      id uuid PRIMARY KEY, email_plain text, email_sealed bytea, email_index bytea UNIQUE,
      details_sealed bytea)`);
  }

  async down(db: QueryRunner): Promise<void> {
    await db.query('DROP TABLE billing.customers');
  }
}

interface RawCustomer {
  id: string;
  email_plain: string | null;
  email_sealed: Uint8Array;
  email_index: Uint8Array;
  details_sealed: Uint8Array | null;
}

describe('sealed fields on an embedded database', () => {
  let directory: string;
  let secrets: SecretFiles;
  let encryption: FieldEncryption;
  let db: DataSource;

  const keyring = (name: string): KeyringFile =>
    JSON.parse(readFileSync(join(directory, 'secrets', name), 'utf8')) as KeyringFile;
  const rotate = (name: string): void =>
    writeFileSync(
      join(directory, 'secrets', name),
      JSON.stringify(addKeyringVersion(keyring(name))),
    );
  const raw = async (id: string): Promise<RawCustomer> =>
    (await db.query<RawCustomer[]>('SELECT * FROM billing.customers WHERE id = $1', [id]))[0];
  const customers = () => db.getRepository(Customer);

  async function insert(email: string, details: Customer['details'] = null): Promise<Customer> {
    const customer = customers().create({ id: randomUUID() });
    Object.assign(customer, { email, details });
    await customers().insert(customer);
    return customer;
  }

  beforeAll(async () => {
    directory = createTempDir('sealed-fields');
    const config = loadConfig({
      DATA_DIR: join(directory, 'data'),
      SECRETS_DIR: join(directory, 'secrets'),
    });
    ensureDevelopmentSecrets(config.secretsDir, ['billing']);
    secrets = new SecretFiles(config.secretsDir);
    encryption = await FieldEncryption.open(config, secrets);
    const schema = {
      service: 'billing' as const,
      entities: [Customer],
      migrations: [CreateCustomers1700000000000],
    };
    db = await openServiceDataSource(buildDataSourceOptions(config, schema, encryption));
  }, 60_000);

  afterAll(async () => {
    await db?.destroy();
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  });

  describe('on insert and load', () => {
    it('stores neither the email nor the details in plaintext, and reads both back', async () => {
      const details = { name: 'Ada Lovelace', lines: ['12 St James Square', 'London'] };
      const { id } = await insert('ada@example.com', details);

      const row = await raw(id);
      const stored = Buffer.concat([row.email_sealed, row.email_index, row.details_sealed!]);
      expect(stored.includes(Buffer.from('ada@example'))).toBe(false);
      expect(stored.includes(Buffer.from('Lovelace'))).toBe(false);
      expect(await customers().findOneByOrFail({ id })).toMatchObject({
        email: 'ada@example.com',
        details,
      });
    });

    it('seals plain objects given to insert() too, and keeps null as null', async () => {
      const id = randomUUID();
      await db.manager.insert(Customer, { id, email: 'plain@example.com', details: null });

      expect((await raw(id)).details_sealed).toBeNull();
      expect(await customers().findOneByOrFail({ id })).toMatchObject({
        email: 'plain@example.com',
        details: null,
      });
    });

    it('finds a row by its blind index', async () => {
      const { id } = await insert('grace@example.com');
      const candidates = encryption.blindIndex().candidates(PURPOSE, 'grace@example.com');

      const found = await customers().findOneBy({ emailIndex: In(candidates) });

      expect(found?.id).toBe(id);
    });
  });

  describe('on a partial update', () => {
    it('seals the values sealedValues() is given, bound to the row', async () => {
      const { id } = await insert('alan@example.com');
      const details = { name: 'Alan Turing', lines: ['Wilmslow'] };

      await db.transaction(async (tx) => {
        await tx.update(
          Customer,
          { id },
          await encryption.sealedValues(tx, Customer, id, { details }),
        );
      });

      expect(Buffer.from((await raw(id)).details_sealed!).includes(Buffer.from('Turing'))).toBe(
        false,
      );
      expect((await customers().findOneByOrFail({ id })).details).toEqual(details);
    });
  });

  describe('on an update that names a plaintext property', () => {
    it('refuses it rather than store plaintext', async () => {
      const { id } = await insert('barbara@example.com');

      await expect(
        customers().update({ id }, { details: { name: 'x', lines: [] } }),
      ).rejects.toThrow(/sealed fields are written with insert\(\), save\(\) or sealedValues/);
    });
  });

  describe('when a sealed field is moved or altered', () => {
    beforeEach(() => {
      jest.spyOn(console, 'error').mockImplementation(() => undefined);
    });

    afterEach(() => {
      jest.restoreAllMocks();
    });

    it('refuses to load a row holding another row’s field', async () => {
      const ada = await insert('moved-from@example.com');
      const bob = await insert('moved-to@example.com');
      await db.query(
        `UPDATE billing.customers SET email_sealed =
           (SELECT email_sealed FROM billing.customers WHERE id = $1) WHERE id = $2`,
        [ada.id, bob.id],
      );

      await expect(customers().findOneBy({ id: bob.id })).rejects.toThrow(SealedFieldError);
      expect((await customers().findOneByOrFail({ id: ada.id })).email).toBe(
        'moved-from@example.com',
      );
      await db.query('DELETE FROM billing.customers WHERE id = $1', [bob.id]);
    });

    it('refuses a row whose field lost a byte', async () => {
      const { id } = await insert('truncated@example.com');
      await db.query(
        `UPDATE billing.customers SET email_sealed = substring(email_sealed from 1
           for length(email_sealed) - 1) WHERE id = $1`,
        [id],
      );

      await expect(customers().findOneBy({ id })).rejects.toThrow(SealedFieldError);
      await db.query('DELETE FROM billing.customers WHERE id = $1', [id]);
    });
  });

  describe('after the keys rotate', () => {
    it('reseals every row under the new versions, and every row stays readable', async () => {
      for (let i = 0; i < 7; i += 1) {
        await insert(`rotating-${i}@example.com`, { name: `${i}`, lines: [] });
      }
      rotate(SECRET_NAMES.dataKeys);
      rotate(SECRET_NAMES.blindIndexKeys);
      await new Promise((resolve) => setTimeout(resolve, 1100));
      await encryption.reload();
      await insert('after-rotation@example.com');

      const reports = await resealTable(db, Customer, encryption, 3);

      const counts = await versionCounts(db, Customer);
      expect(counts.every((count) => count.version === 2)).toBe(true);
      expect(reports.find((r) => r.column === 'email_sealed')?.updated).toBeGreaterThan(0);
      expect(reports.find((r) => r.column === 'email_index')?.updated).toBeGreaterThan(0);
      for (const customer of await customers().find()) {
        expect(customer.email).toMatch(/@example\.com$/);
        expect(FieldCipher.versionOf(customer.emailSealed)).toBe(2);
      }
      const candidates = encryption.blindIndex().candidates(PURPOSE, 'rotating-3@example.com');
      expect((await customers().findOneBy({ emailIndex: In(candidates) }))?.details?.name).toBe(
        '3',
      );
      expect(await resealTable(db, Customer, encryption)).toEqual(
        reports.map((report) => ({ ...report, updated: 0, skipped: 0 })),
      );
    });
  });

  describe(sealPlaintextColumn.name, () => {
    it('moves plaintext values into the sealed column, bound as the application binds them', async () => {
      const id = randomUUID();
      await db.query(
        `INSERT INTO billing.customers (id, email_plain) VALUES ($1, 'legacy@example.com')`,
        [id],
      );
      const runner = db.createQueryRunner();

      const sealed = await sealPlaintextColumn(runner, encryption, {
        schema: 'billing',
        table: 'customers',
        from: 'email_plain',
        to: 'email_sealed',
        index: { column: 'email_index', purpose: PURPOSE },
      });
      await runner.release();

      expect(sealed).toBe(1);
      const candidates = encryption.blindIndex().candidates(PURPOSE, 'legacy@example.com');
      expect((await customers().findOneBy({ emailIndex: In(candidates) }))?.email).toBe(
        'legacy@example.com',
      );
    });
  });
});
