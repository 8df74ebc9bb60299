import { execFileSync } from 'node:child_process';
import {
  appendFileSync,
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The server binaries of the newest PostgreSQL that Debian's packages installed, if any. */
function postgresBinaries(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length > 0 ? join(root, versions[0], 'bin') : undefined;
}

/**
 * Why a PostgreSQL cluster of the test's own cannot start here, or undefined when it can: it
 * needs Debian's server binaries and root, to run them as the `postgres` account.
 */
export function tlsPostgresUnavailable(): string | undefined {
  if (!postgresBinaries()) return 'PostgreSQL server binaries are not installed';
  if (process.getuid?.() !== 0) return 'starting a PostgreSQL cluster needs root';
  try {
    execFileSync('id', ['postgres'], { stdio: 'ignore' });
  } catch {
    return 'there is no postgres account';
  }
  return undefined;
}

/**
 * A throw-away PostgreSQL cluster on 127.0.0.1 that accepts only TLS connections
 * (`hostssl` lines, and `hostnossl` rejected), with the certificate and key it is given.
 */
export class TlsPostgres {
  private constructor(
    private readonly directory: string,
    private readonly bin: string,
    readonly port: number,
  ) {}

  static start(certificateFile: string, keyFile: string, port: number): TlsPostgres {
    const bin = postgresBinaries();
    if (!bin) throw new Error('PostgreSQL server binaries are not installed');
    const directory = mkdtempSync(join(tmpdir(), 'portcullis-tls-postgres-'));
    chmodSync(directory, 0o755);
    const cluster = new TlsPostgres(directory, bin, port);
    try {
      const data = join(directory, 'data');
      execFileSync('chown', ['postgres:postgres', directory]);
      cluster.asPostgres('initdb', ['-D', data, '-U', 'postgres', '-A', 'reject', '--no-sync']);
      cluster.useCertificate(certificateFile, keyFile);
      appendFileSync(
        join(data, 'postgresql.conf'),
        [
          `listen_addresses = '127.0.0.1'`,
          `port = ${port}`,
          `unix_socket_directories = '${directory}'`,
          `ssl = on`,
          `ssl_cert_file = 'server.crt'`,
          `ssl_key_file = 'server.key'`,
          `fsync = off`,
          '',
        ].join('\n'),
      );
      writeFileSync(
        join(data, 'pg_hba.conf'),
        [
          'local all postgres peer',
          'hostssl all all 127.0.0.1/32 trust',
          'hostnossl all all 127.0.0.1/32 reject',
          '',
        ].join('\n'),
      );
      cluster.asPostgres('pg_ctl', [
        '-D',
        data,
        '-l',
        join(directory, 'server.log'),
        '-w',
        'start',
      ]);
      cluster.asPostgres('createdb', ['-h', directory, '-p', String(port), 'portcullis']);
    } catch (error) {
      cluster.stop();
      throw error;
    }
    return cluster;
  }

  /** A connection URL without TLS parameters: the settings under test choose TLS. */
  url(database = 'portcullis'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`;
  }

  /** Serves another certificate from the next connection on. */
  replaceCertificate(certificateFile: string, keyFile: string): void {
    this.useCertificate(certificateFile, keyFile);
    this.asPostgres('pg_ctl', ['-D', join(this.directory, 'data'), 'reload']);
  }

  /** Runs SQL as the superuser over the local socket, where no TLS is involved. */
  query(sql: string): string {
    return this.asPostgres('psql', [
      ...['-h', this.directory, '-p', String(this.port), '-U', 'postgres'],
      ...['-d', 'portcullis', '-At', '-c', sql],
    ]).trim();
  }

  stop(): void {
    const data = join(this.directory, 'data');
    if (existsSync(join(data, 'postmaster.pid'))) {
      try {
        this.asPostgres('pg_ctl', ['-D', data, '-m', 'immediate', 'stop']);
      } catch {
        // Already gone.
      }
    }
    rmSync(this.directory, { recursive: true, force: true });
  }

  private useCertificate(certificateFile: string, keyFile: string): void {
    const data = join(this.directory, 'data');
    for (const [from, to] of [
      [certificateFile, 'server.crt'],
      [keyFile, 'server.key'],
    ]) {
      copyFileSync(from, join(data, to));
      chmodSync(join(data, to), 0o600);
      execFileSync('chown', ['postgres:postgres', join(data, to)]);
    }
  }

  private asPostgres(command: string, args: string[]): string {
    return execFileSync('runuser', ['-u', 'postgres', '--', join(this.bin, command), ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  }
}
