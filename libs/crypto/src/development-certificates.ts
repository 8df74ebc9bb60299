import { execFileSync } from 'node:child_process';
import {
  type KeyObject,
  X509Certificate,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
} from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

/** File names of the development TLS material inside `SECRETS_DIR`. */
export const TLS_NAMES = {
  caCertificate: 'tls/ca.crt',
  /** Signs the other certificates; no running process needs it. */
  caKey: 'tls/ca.key',
  certificate: (name: string): string => `tls/${name}.crt`,
  key: (name: string): string => `tls/${name}.key`,
  /** The NATS server's certificate and key: `tls/nats-server.crt` and `.key`. */
  natsServer: 'nats-server',
} as const;

/** What the NATS server certificate answers to: the compose host name and loopback. */
export const NATS_SERVER_HOSTS = {
  dns: ['localhost', 'nats'],
  ip: ['127.0.0.1', '::1'],
} as const;

const DAY_MS = 24 * 60 * 60 * 1000;
const CA_VALIDITY_DAYS = 365;
const LEAF_VALIDITY_DAYS = 90;
/** A certificate that expires sooner than this is issued again. */
const RENEW_WITHIN_DAYS = 14;
const CA_SUBJECT = 'Portcullis development CA';
const CLIENT_NAME = /^[a-z0-9][a-z0-9-]*$/;

/** Raised when certificates must be issued and `openssl` cannot be run. */
export class OpensslMissingError extends Error {
  constructor(command: string) {
    super(
      `"${command}" was not found. It issues the development TLS certificates (Node cannot ` +
        'create X.509 certificates); install OpenSSL, e.g. `apt-get install openssl`.',
    );
    this.name = 'OpensslMissingError';
  }
}

export interface DevelopmentCertificateOptions {
  /** The OpenSSL command; `openssl` on the PATH by default. */
  readonly openssl?: string;
  /** The moment renewal is judged against; now by default. */
  readonly now?: Date;
}

/**
 * Creates whatever development TLS material is missing or due, under `tls/` in `directory`:
 * a CA (valid one year), a server certificate for NATS (90 days; `localhost`, `nats`,
 * 127.0.0.1 and ::1) and a client certificate per name in `clients` (90 days; subject
 * `CN=<name>`, which NATS maps to the user of that name). Keys are ECDSA P-256, written
 * 0600. A certificate is kept unless it is missing, does not match its key, was not issued
 * by the current CA, or expires within 14 days; a new CA re-issues every certificate.
 * Certificates are signed with `openssl`. Returns the names it wrote (never the values).
 */
export function ensureDevelopmentCertificates(
  directory: string,
  clients: readonly string[],
  options: DevelopmentCertificateOptions = {},
): string[] {
  for (const name of clients) {
    if (!CLIENT_NAME.test(name) || name === TLS_NAMES.natsServer || name === 'ca') {
      throw new Error(`"${name}" cannot name a client certificate`);
    }
  }
  const now = options.now ?? new Date();
  const issuer = new Issuer(directory, options.openssl ?? 'openssl');
  try {
    const existingCa = loadCertificate(directory, 'ca');
    const keepCa =
      existingCa !== undefined &&
      existingCa.certificate.ca &&
      isCurrent(existingCa, existingCa.certificate, now);
    const ca = keepCa ? existingCa.certificate : issuer.issueCa();

    const leaves: Array<[string, Profile]> = [
      [TLS_NAMES.natsServer, 'server'],
      ...clients.map((name): [string, Profile] => [name, 'client']),
    ];
    for (const [name, profile] of leaves) {
      const existing = keepCa ? loadCertificate(directory, name) : undefined;
      const keep =
        existing !== undefined &&
        existing.certificate.subject === `CN=${name}` &&
        isCurrent(existing, ca, now);
      if (!keep) issuer.issueLeaf(name, profile);
    }
    return issuer.written;
  } finally {
    issuer.dispose();
  }
}

type Profile = 'server' | 'client';

interface LoadedCertificate {
  readonly certificate: X509Certificate;
  readonly key: KeyObject;
}

function loadCertificate(directory: string, name: string): LoadedCertificate | undefined {
  const certificatePath = join(directory, TLS_NAMES.certificate(name));
  const keyPath = join(directory, TLS_NAMES.key(name));
  if (!existsSync(certificatePath) || !existsSync(keyPath)) return undefined;
  try {
    return {
      certificate: new X509Certificate(readFileSync(certificatePath)),
      key: createPrivateKey(readFileSync(keyPath)),
    };
  } catch {
    return undefined;
  }
}

function isCurrent(loaded: LoadedCertificate, issuer: X509Certificate, now: Date): boolean {
  const { certificate, key } = loaded;
  return (
    certificate.checkPrivateKey(key) &&
    certificate.checkIssued(issuer) &&
    certificate.verify(issuer.publicKey) &&
    new Date(certificate.validTo).getTime() - now.getTime() > RENEW_WITHIN_DAYS * DAY_MS
  );
}

/** The OpenSSL extension sections of each kind of certificate. */
const OPENSSL_CONFIG = `
[req]
distinguished_name = subject
prompt = no
[subject]
[ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${[
  ...NATS_SERVER_HOSTS.dns.map((name) => `DNS:${name}`),
  ...NATS_SERVER_HOSTS.ip.map((address) => `IP:${address}`),
].join(', ')}
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

/** Writes keys itself and has OpenSSL sign; requests and settings live in a scratch folder. */
class Issuer {
  readonly written: string[] = [];
  private scratch?: string;

  constructor(
    private readonly directory: string,
    private readonly openssl: string,
  ) {}

  issueCa(): X509Certificate {
    this.writeKey('ca');
    this.run([
      'req',
      ...['-new', '-x509', '-config', this.configFile(), '-extensions', 'ca'],
      ...['-key', this.pathOf(TLS_NAMES.caKey), '-subj', `/CN=${CA_SUBJECT}`],
      ...['-days', String(CA_VALIDITY_DAYS), '-sha256', '-set_serial', serialNumber()],
      ...['-out', join(this.scratchDir(), 'ca.crt')],
    ]);
    return this.writeCertificate('ca');
  }

  issueLeaf(name: string, profile: Profile): void {
    this.writeKey(name);
    const request = join(this.scratchDir(), `${name}.csr`);
    this.run([
      'req',
      ...['-new', '-config', this.configFile(), '-key', this.pathOf(TLS_NAMES.key(name))],
      ...['-subj', `/CN=${name}`, '-out', request],
    ]);
    this.run([
      'x509',
      ...['-req', '-in', request, '-sha256', '-days', String(LEAF_VALIDITY_DAYS)],
      ...['-CA', this.pathOf(TLS_NAMES.caCertificate), '-CAkey', this.pathOf(TLS_NAMES.caKey)],
      ...['-set_serial', serialNumber(), '-extfile', this.configFile(), '-extensions', profile],
      ...['-out', join(this.scratchDir(), `${name}.crt`)],
    ]);
    this.writeCertificate(name);
  }

  dispose(): void {
    if (this.scratch) rmSync(this.scratch, { recursive: true, force: true });
  }

  private writeKey(name: string): void {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    this.write(TLS_NAMES.key(name), pem, 0o600);
  }

  private writeCertificate(name: string): X509Certificate {
    const pem = readFileSync(join(this.scratchDir(), `${name}.crt`), 'utf8');
    this.write(TLS_NAMES.certificate(name), pem, 0o644);
    return new X509Certificate(pem);
  }

  private write(name: string, contents: string, mode: number): void {
    const path = this.pathOf(name);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, contents, { mode });
    chmodSync(path, mode);
    this.written.push(name);
  }

  private pathOf(name: string): string {
    return join(this.directory, name);
  }

  private scratchDir(): string {
    this.scratch ??= mkdtempSync(join(tmpdir(), 'portcullis-certificates-'));
    return this.scratch;
  }

  private configFile(): string {
    const path = join(this.scratchDir(), 'openssl.cnf');
    if (!existsSync(path)) writeFileSync(path, OPENSSL_CONFIG);
    return path;
  }

  private run(args: string[]): void {
    try {
      execFileSync(this.openssl, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new OpensslMissingError(this.openssl);
      }
      const stderr = (error as { stderr?: Buffer }).stderr?.toString('utf8').trim() ?? '';
      throw new Error(`openssl ${args[0]} failed: ${stderr}`, { cause: error });
    }
  }
}

/** A random positive 127-bit serial number, as `-set_serial` takes it. */
function serialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] &= 0x7f;
  return `0x${bytes.toString('hex')}`;
}
