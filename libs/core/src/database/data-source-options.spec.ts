import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { loadConfig } from '../config/app-config';
import { buildDataSourceOptions, type ServiceSchema } from './data-source-options';

const SCHEMA: ServiceSchema = { service: 'orders', entities: [], migrations: [] };
const DATABASE_URL = 'postgres://portcullis@db.internal:5432/portcullis';

describe(buildDataSourceOptions.name, () => {
  let directory: string;
  let caFile: string;

  beforeAll(() => {
    directory = createTempDir('data-source');
    caFile = join(directory, 'ca.crt');
    writeFileSync(caFile, '-----BEGIN CERTIFICATE-----\nnot parsed here\n');
  });

  afterAll(() => {
    removeTempDir(directory);
  });

  const sslFor = (env: Record<string, string>): unknown =>
    (buildDataSourceOptions(loadConfig({ DATABASE_URL, ...env }), SCHEMA) as { ssl?: unknown }).ssl;

  describe('on PostgreSQL', () => {
    it('connects without TLS by default', () => {
      expect(sslFor({})).toBe(false);
      expect(sslFor({ DATABASE_SSL: 'disable' })).toBe(false);
    });

    it('encrypts without checking the certificate for require', () => {
      expect(sslFor({ DATABASE_SSL: 'require' })).toEqual({ rejectUnauthorized: false });
    });

    it('checks the certificate against the system CAs for verify-full', () => {
      expect(sslFor({ DATABASE_SSL: 'verify-full' })).toEqual({ rejectUnauthorized: true });
    });

    it('checks the certificate against DATABASE_CA_FILE when set', () => {
      expect(sslFor({ DATABASE_SSL: 'verify-full', DATABASE_CA_FILE: caFile })).toEqual({
        rejectUnauthorized: true,
        ca: '-----BEGIN CERTIFICATE-----\nnot parsed here\n',
      });
    });

    it('names DATABASE_CA_FILE when the file cannot be read', () => {
      const missing = join(directory, 'missing.crt');

      expect(() => sslFor({ DATABASE_SSL: 'verify-full', DATABASE_CA_FILE: missing })).toThrow(
        `DATABASE_CA_FILE could not be read: ${missing}`,
      );
    });

    it('names the service schema and application', () => {
      const options = buildDataSourceOptions(loadConfig({ DATABASE_URL }), SCHEMA);

      expect(options).toMatchObject({
        url: DATABASE_URL,
        schema: 'orders',
        applicationName: 'portcullis-orders',
        synchronize: false,
      });
    });
  });

  describe('on the embedded database', () => {
    it('ignores DATABASE_SSL', () => {
      const options = buildDataSourceOptions(loadConfig({ DATABASE_SSL: 'verify-full' }), SCHEMA);

      expect(options).not.toHaveProperty('ssl');
      expect(options).not.toHaveProperty('url');
    });
  });
});
