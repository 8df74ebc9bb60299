import { X509Certificate, createPrivateKey } from 'node:crypto';
import { copyFileSync, readFileSync, statSync } from 'node:fs';
import { type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';

import { createTempDir, removeTempDir } from '../../../jest/temp-dir';
import {
  OpensslMissingError,
  TLS_NAMES,
  ensureDevelopmentCertificates,
} from './development-certificates';

const CLIENTS = ['auth', 'orders', 'billing', 'platform'];
const DAY_MS = 24 * 60 * 60 * 1000;
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

describe(ensureDevelopmentCertificates.name, () => {
  let directory: string;

  beforeEach(() => {
    directory = createTempDir('certificates');
  });

  afterEach(() => {
    removeTempDir(directory);
  });

  const read = (name: string): string => readFileSync(join(directory, name), 'utf8');
  const certificate = (name: string) => new X509Certificate(read(TLS_NAMES.certificate(name)));
  const ca = () => certificate('ca');
  const daysValid = (cert: X509Certificate) =>
    Math.round((Date.parse(cert.validTo) - Date.parse(cert.validFrom)) / DAY_MS);
  const inDays = (days: number) => new Date(Date.now() + days * DAY_MS);

  describe('in an empty directory', () => {
    it('writes a CA, the NATS server certificate and a client certificate per name', () => {
      const written = ensureDevelopmentCertificates(directory, CLIENTS);

      expect(written.sort()).toEqual(
        ['ca', 'nats-server', ...CLIENTS]
          .flatMap((name) => [`tls/${name}.crt`, `tls/${name}.key`])
          .sort(),
      );
    });

    it('makes ECDSA P-256 keys readable by their owner only', () => {
      ensureDevelopmentCertificates(directory, ['orders']);

      for (const name of ['ca', 'nats-server', 'orders']) {
        const path = join(directory, TLS_NAMES.key(name));
        expect({ name, mode: statSync(path).mode & 0o777 }).toEqual({ name, mode: 0o600 });
        expect(createPrivateKey(readFileSync(path)).asymmetricKeyDetails).toEqual({
          namedCurve: 'prime256v1',
        });
      }
      expect(statSync(join(directory, 'tls')).mode & 0o077).toBe(0);
    });

    it('makes a self-signed CA valid for a year', () => {
      ensureDevelopmentCertificates(directory, []);

      expect(ca().ca).toBe(true);
      expect(ca().subject).toBe('CN=Portcullis development CA');
      expect(ca().verify(ca().publicKey)).toBe(true);
      expect(daysValid(ca())).toBe(365);
    });

    it('makes a NATS server certificate for localhost, nats and loopback, for 90 days', () => {
      ensureDevelopmentCertificates(directory, []);
      const server = certificate('nats-server');

      expect(server.ca).toBe(false);
      expect(server.checkIssued(ca()) && server.verify(ca().publicKey)).toBe(true);
      expect(server.subjectAltName?.split(', ')).toEqual([
        'DNS:localhost',
        'DNS:nats',
        'IP Address:127.0.0.1',
        'IP Address:0:0:0:0:0:0:0:1',
      ]);
      expect(server.keyUsage).toEqual([SERVER_AUTH]);
      expect(daysValid(server)).toBe(90);
    });

    it('makes client certificates whose only name is CN=<client>, for 90 days', () => {
      ensureDevelopmentCertificates(directory, ['orders']);
      const client = certificate('orders');

      expect(client.subject).toBe('CN=orders');
      expect(client.subjectAltName).toBeUndefined();
      expect(client.keyUsage).toEqual([CLIENT_AUTH]);
      expect(client.checkIssued(ca()) && client.verify(ca().publicKey)).toBe(true);
      expect(daysValid(client)).toBe(90);
    });

    it('lets a client and the server authenticate each other over TLS', async () => {
      ensureDevelopmentCertificates(directory, ['orders']);
      const tls = (name: string) => ({
        cert: read(TLS_NAMES.certificate(name)),
        key: read(TLS_NAMES.key(name)),
        ca: read(TLS_NAMES.caCertificate),
      });
      const server = createServer({ ...tls('nats-server'), requestCert: true }, (socket) => {
        socket.end(String(socket.getPeerCertificate().subject.CN));
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const { port } = server.address() as AddressInfo;

      try {
        const peer = await new Promise<string>((resolve, reject) => {
          const socket = connect({ ...tls('orders'), host: '127.0.0.1', port }, () => {
            socket.once('data', (data) => resolve(data.toString()));
          });
          socket.once('error', reject);
        });
        expect(peer).toBe('orders');
      } finally {
        server.close();
      }
    });
  });

  describe('when the certificates exist', () => {
    it('writes nothing and keeps every file', () => {
      ensureDevelopmentCertificates(directory, CLIENTS);
      const names = ['ca', 'nats-server', ...CLIENTS].flatMap((name) => [
        TLS_NAMES.certificate(name),
        TLS_NAMES.key(name),
      ]);
      const before = names.map(read);

      expect(ensureDevelopmentCertificates(directory, CLIENTS)).toEqual([]);
      expect(names.map(read)).toEqual(before);
    });

    it('issues only what a new client needs', () => {
      ensureDevelopmentCertificates(directory, ['orders']);

      expect(ensureDevelopmentCertificates(directory, ['orders', 'billing'])).toEqual([
        'tls/billing.key',
        'tls/billing.crt',
      ]);
    });

    it('issues again the certificates that expire within 14 days, keeping the CA', () => {
      ensureDevelopmentCertificates(directory, ['orders']);
      const caBefore = read(TLS_NAMES.caCertificate);

      const written = ensureDevelopmentCertificates(directory, ['orders'], { now: inDays(80) });

      expect(written.sort()).toEqual(
        ['tls/nats-server.crt', 'tls/nats-server.key', 'tls/orders.crt', 'tls/orders.key'].sort(),
      );
      expect(read(TLS_NAMES.caCertificate)).toBe(caBefore);
    });

    it('issues everything again under a new CA when the CA is due', () => {
      ensureDevelopmentCertificates(directory, ['orders']);
      const caBefore = read(TLS_NAMES.caCertificate);

      const written = ensureDevelopmentCertificates(directory, ['orders'], { now: inDays(360) });

      expect(written).toHaveLength(6);
      expect(read(TLS_NAMES.caCertificate)).not.toBe(caBefore);
      expect(certificate('orders').verify(ca().publicKey)).toBe(true);
    });

    it('issues again a certificate that another CA signed', () => {
      ensureDevelopmentCertificates(directory, ['orders']);
      const other = createTempDir('other-certificates');
      try {
        ensureDevelopmentCertificates(other, ['orders']);
        for (const name of [TLS_NAMES.certificate('orders'), TLS_NAMES.key('orders')]) {
          copyFileSync(join(other, name), join(directory, name));
        }

        expect(ensureDevelopmentCertificates(directory, ['orders'])).toEqual([
          'tls/orders.key',
          'tls/orders.crt',
        ]);
        expect(certificate('orders').verify(ca().publicKey)).toBe(true);
      } finally {
        removeTempDir(other);
      }
    });
  });

  describe('with a client name that is not a plain name', () => {
    it.each(['../orders', 'Orders', 'nats-server', 'ca', ''])('refuses "%s"', (name) => {
      expect(() => ensureDevelopmentCertificates(directory, [name])).toThrow(
        'cannot name a client certificate',
      );
    });
  });

  describe('without openssl', () => {
    const openssl = '/nonexistent/openssl';

    it('says that openssl is needed and how to install it', () => {
      expect(() => ensureDevelopmentCertificates(directory, ['orders'], { openssl })).toThrow(
        OpensslMissingError,
      );
      expect(() => ensureDevelopmentCertificates(directory, ['orders'], { openssl })).toThrow(
        /"\/nonexistent\/openssl" was not found.*apt-get install openssl/,
      );
    });

    it('is not needed while every certificate is current', () => {
      ensureDevelopmentCertificates(directory, ['orders']);

      expect(ensureDevelopmentCertificates(directory, ['orders'], { openssl })).toEqual([]);
    });
  });
});
