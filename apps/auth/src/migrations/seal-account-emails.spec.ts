import { join } from 'node:path';

import { In } from 'typeorm';

import {
  FieldEncryption,
  buildDataSourceOptions,
  closeEmbeddedDatabases,
  loadConfig,
  openServiceDataSource,
} from '@portcullis/core';
import { SecretFiles, ensureDevelopmentSecrets } from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { ACCOUNT_EMAIL_INDEX, Account } from '../accounts/account.entity';
import { CreateAccounts1764806400000 } from './1764806400000-create-accounts';
import { KeysAndLoginLimits1764806400001 } from './1764806400001-keys-and-login-limits';
import { sealAccountEmails } from './1764806800000-seal-account-emails';

describe('the migration that seals account emails', () => {
  let directory: string;

  beforeAll(() => {
    directory = createTempDir('seal-emails');
  });

  afterAll(async () => {
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  });

  it('seals the emails of existing accounts, indexes them and drops the plaintext', async () => {
    const config = loadConfig({
      DATA_DIR: join(directory, 'data'),
      SECRETS_DIR: join(directory, 'secrets'),
    });
    ensureDevelopmentSecrets(config.secretsDir, ['auth']);
    const encryption = await FieldEncryption.open(config, new SecretFiles(config.secretsDir));
    const before = await openServiceDataSource(
      buildDataSourceOptions(config, {
        service: 'auth',
        entities: [],
        migrations: [CreateAccounts1764806400000, KeysAndLoginLimits1764806400001],
      }),
    );
    await before.query(
      `INSERT INTO auth.accounts (id, email, password_hash, roles) VALUES
        ('6d0c3a52-3d5e-4b7e-9f43-5a8d3c2a4b11', 'ada@example.com', 'x', '{customer}'),
        ('0a9f1d2c-7e44-4e1b-8a55-2b3c4d5e6f70', 'grace@example.com', 'x', '{admin}')`,
    );
    await before.query(`INSERT INTO auth.login_failures VALUES ('account:abc', 3, now(), now())`);
    await before.destroy();

    const after = await openServiceDataSource(
      buildDataSourceOptions(
        config,
        {
          service: 'auth',
          entities: [Account],
          migrations: [CreateAccounts1764806400000, KeysAndLoginLimits1764806400001],
          sealingMigrations: (fields) => [sealAccountEmails(fields)],
        },
        encryption,
      ),
    );

    const columns = await after.query<Array<{ column_name: string }>>(
      `SELECT column_name FROM information_schema.columns
        WHERE table_schema = 'auth' AND table_name = 'accounts'`,
    );
    expect(columns.map((c) => c.column_name)).not.toContain('email');
    const rows = await after.query<Array<{ email_sealed: Uint8Array }>>(
      'SELECT email_sealed FROM auth.accounts',
    );
    expect(Buffer.concat(rows.map((r) => r.email_sealed)).includes(Buffer.from('example'))).toBe(
      false,
    );
    const candidates = encryption.blindIndex().candidates(ACCOUNT_EMAIL_INDEX, 'ada@example.com');
    const ada = await after.getRepository(Account).findOneBy({ emailIndex: In(candidates) });
    expect(ada).toMatchObject({ email: 'ada@example.com', roles: ['customer'] });
    expect(await after.query('SELECT * FROM auth.login_failures')).toEqual([]);
    await after.destroy();
  }, 60_000);
});
