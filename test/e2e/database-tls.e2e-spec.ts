import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DataSource } from 'typeorm';

import { buildDataSourceOptions, loadConfig } from '@portcullis/core';
import { TLS_NAMES, ensureDevelopmentCertificates } from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../jest/temp-dir';
import { Deployment } from '../support/deployment';
import { freePort } from '../support/free-port';
import { TlsPostgres, tlsPostgresUnavailable } from '../support/tls-postgres';

/**
 * DATABASE_SSL and DATABASE_CA_FILE against a PostgreSQL that accepts only TLS, started for
 * this file with a certificate from the development CA. It runs once, with the real-server
 * shapes, where PostgreSQL's binaries are installed.
 */
// `npm test` runs this file with the postgres-nats shape only (see test/run-tests.mjs).
describe('TLS to PostgreSQL', () => {
  let certificates: string;
  let otherCa: string;
  let postgres: TlsPostgres;
  const file = (name: string) => join(certificates, name);

  beforeAll(async () => {
    const unavailable = tlsPostgresUnavailable();
    if (unavailable) throw new Error(`cannot start a TLS PostgreSQL here: ${unavailable}`);
    certificates = createTempDir('database-tls');
    otherCa = createTempDir('database-tls-other-ca');
    ensureDevelopmentCertificates(certificates, []);
    ensureDevelopmentCertificates(otherCa, []);
    const server = TLS_NAMES.natsServer;
    postgres = TlsPostgres.start(
      file(TLS_NAMES.certificate(server)),
      file(TLS_NAMES.key(server)),
      await freePort(),
    );
  }, 60_000);

  afterAll(() => {
    postgres?.stop();
    removeTempDir(certificates);
    removeTempDir(otherCa);
  });

  /** Connects one schema's data source with these settings and reports its TLS session. */
  async function connectWith(env: Record<string, string>): Promise<{ ssl: boolean }> {
    const config = loadConfig({ DATABASE_URL: postgres.url(), ...env });
    const options = buildDataSourceOptions(config, {
      service: 'orders',
      entities: [],
      migrations: [],
    });
    const dataSource = new DataSource(options);
    await dataSource.initialize();
    try {
      const [row] = await dataSource.query<Array<{ ssl: boolean }>>(
        'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
      );
      return row;
    } finally {
      await dataSource.destroy();
    }
  }

  const refusal = (env: Record<string, string>) =>
    connectWith(env).then(
      () => 'connected',
      (error: unknown) => (error instanceof Error ? error.message : String(error)),
    );

  it('finds a server that refuses connections without TLS', async () => {
    expect(await refusal({ DATABASE_SSL: 'disable' })).toMatch(/pg_hba\.conf rejects connection/);
  });

  it('encrypts with require, without checking the certificate', async () => {
    expect(await connectWith({ DATABASE_SSL: 'require' })).toEqual({ ssl: true });
  });

  it('encrypts with verify-full when DATABASE_CA_FILE signed the certificate', async () => {
    const env = { DATABASE_SSL: 'verify-full', DATABASE_CA_FILE: file(TLS_NAMES.caCertificate) };

    expect(await connectWith(env)).toEqual({ ssl: true });
  });

  it('refuses with verify-full a certificate that another CA signed', async () => {
    const env = {
      DATABASE_SSL: 'verify-full',
      DATABASE_CA_FILE: join(otherCa, TLS_NAMES.caCertificate),
    };

    expect(await refusal(env)).toMatch(/unable to verify the first certificate/);
  });

  it('refuses with verify-full and no DATABASE_CA_FILE a CA the system does not trust', async () => {
    expect(await refusal({ DATABASE_SSL: 'verify-full' })).toMatch(
      /unable to verify the first certificate/,
    );
  });

  it('runs an app with verify-full whose every connection is encrypted', async () => {
    const deployment = await Deployment.start('postgres-nats', {
      DATABASE_URL: postgres.url(),
      DATABASE_SSL: 'verify-full',
      DATABASE_CA_FILE: file(TLS_NAMES.caCertificate),
    });
    try {
      const [base] = deployment.baseUrls();
      expect((await fetch(`${base}/health`)).status).toBe(200);

      const sessions = postgres.query(
        "SELECT count(*) FILTER (WHERE s.ssl) || ' ' || count(*) FILTER (WHERE NOT s.ssl) " +
          'FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) ' +
          "WHERE a.application_name LIKE 'portcullis-%'",
      );
      const [encrypted, plain] = sessions.split(' ').map(Number);
      expect(encrypted).toBeGreaterThan(0);
      expect(plain).toBe(0);
    } finally {
      await deployment.stop();
    }
  }, 120_000);

  it('refuses with verify-full a certificate of the CA made out for another host', async () => {
    const wrongHost = issueServerCertificate(certificates, 'db.invalid');
    postgres.replaceCertificate(wrongHost.certificateFile, wrongHost.keyFile);
    const caFile = file(TLS_NAMES.caCertificate);

    expect(await refusal({ DATABASE_SSL: 'verify-full', DATABASE_CA_FILE: caFile })).toMatch(
      /Hostname\/IP does not match certificate's altnames/,
    );
    expect(await connectWith({ DATABASE_SSL: 'require' })).toEqual({ ssl: true });
  });
});

/** A server certificate from the development CA in `directory` for `host` alone. */
function issueServerCertificate(
  directory: string,
  host: string,
): { certificateFile: string; keyFile: string } {
  const out = (name: string) => join(directory, `${host}.${name}`);
  writeFileSync(out('cnf'), `extendedKeyUsage = serverAuth\nsubjectAltName = DNS:${host}\n`);
  execFileSync(
    'openssl',
    [
      ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
      ...['-keyout', out('key'), '-subj', `/CN=${host}`, '-out', out('csr')],
    ],
    { stdio: 'ignore' },
  );
  execFileSync(
    'openssl',
    [
      ...['x509', '-req', '-in', out('csr'), '-days', '1', '-sha256', '-set_serial', '0x1f'],
      ...['-CA', join(directory, TLS_NAMES.caCertificate)],
      ...['-CAkey', join(directory, TLS_NAMES.caKey)],
      ...['-extfile', out('cnf'), '-out', out('crt')],
    ],
    { stdio: 'ignore' },
  );
  return { certificateFile: out('crt'), keyFile: out('key') };
}
