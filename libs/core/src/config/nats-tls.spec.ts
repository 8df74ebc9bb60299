import { join } from 'node:path';

import { TLS_NAMES, ensureDevelopmentCertificates } from '@portcullis/crypto';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { natsInboxPrefix, natsTransportSecurity } from './nats-tls';

describe(natsTransportSecurity.name, () => {
  let directory: string;
  const file = (name: string): string => join(directory, name);

  beforeAll(() => {
    directory = createTempDir('nats-tls');
    ensureDevelopmentCertificates(directory, ['orders', 'platform']);
  });

  afterAll(() => {
    removeTempDir(directory);
  });

  const clientFiles = (name: string) => ({
    caFile: file(TLS_NAMES.caCertificate),
    certFile: file(TLS_NAMES.certificate(name)),
    keyFile: file(TLS_NAMES.key(name)),
  });

  it('adds nothing without TLS files', () => {
    expect(natsTransportSecurity(undefined)).toEqual({});
  });

  it('verifies the server against the CA alone when there is no client certificate', () => {
    const files = { caFile: file(TLS_NAMES.caCertificate) };

    expect(natsTransportSecurity(files)).toEqual({ tls: files });
  });

  it.each(['orders', 'platform'])(
    "puts the inboxes of %s's certificate under its common name",
    (name) => {
      expect(natsTransportSecurity(clientFiles(name))).toEqual({
        tls: clientFiles(name),
        inboxPrefix: `_INBOX.${name}`,
      });
    },
  );

  it('names NATS_TLS_CERT_FILE when the certificate cannot be read', () => {
    const files = { ...clientFiles('orders'), certFile: file('tls/missing.crt') };

    expect(() => natsTransportSecurity(files)).toThrow(
      `NATS_TLS_CERT_FILE could not be read as a PEM certificate: ${file('tls/missing.crt')}`,
    );
  });

  it('refuses a certificate whose common name is no NATS user name', () => {
    const files = { ...clientFiles('orders'), certFile: file(TLS_NAMES.caCertificate) };

    expect(() => natsTransportSecurity(files)).toThrow('needs a common name of letters');
  });
});

describe(natsInboxPrefix.name, () => {
  it('is _INBOX and the user name', () => {
    expect(natsInboxPrefix('billing')).toBe('_INBOX.billing');
  });
});
