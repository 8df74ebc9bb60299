import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { delimiter, join } from 'node:path';

import { renderNatsServerConfig } from '@portcullis/contracts';
import { natsInboxPrefix } from '@portcullis/core';
import { TLS_NAMES, ensureDevelopmentCertificates } from '@portcullis/crypto';

/** A test-only NATS user that may publish and subscribe anywhere, to watch or forge traffic. */
export const E2E_NATS_USER = 'e2e';

const STARTUP_TIMEOUT_MS = 10_000;

/** The TLS files a NATS client of `user` presents, in @nats-io/transport-node's names. */
export interface NatsClientFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** How a client connects as `user`: its certificate, and inboxes under its own prefix. */
export interface NatsClientOptions {
  readonly tls: NatsClientFiles;
  readonly inboxPrefix: string;
}

function natsClientFiles(secretsDir: string, user: string): NatsClientFiles {
  return {
    caFile: join(secretsDir, TLS_NAMES.caCertificate),
    certFile: join(secretsDir, TLS_NAMES.certificate(user)),
    keyFile: join(secretsDir, TLS_NAMES.key(user)),
  };
}

/** Options of @nats-io/transport-node's `connect` for `user`, as the apps derive them. */
export function natsClientOptions(secretsDir: string, user: string): NatsClientOptions {
  return { tls: natsClientFiles(secretsDir, user), inboxPrefix: natsInboxPrefix(user) };
}

/** The same files as the settings an app reads. */
export function natsTlsEnv(secretsDir: string, user: string): Record<string, string> {
  const files = natsClientFiles(secretsDir, user);
  return {
    NATS_TLS_CA_FILE: files.caFile,
    NATS_TLS_CERT_FILE: files.certFile,
    NATS_TLS_KEY_FILE: files.keyFile,
  };
}

/**
 * A nats-server of the suite's own. It can be stopped and started again on the same port,
 * configuration and JetStream store, to test what an outage does.
 */
export class RunningNatsServer {
  /** What the server printed: connections, TLS failures, permission violations. */
  readonly log: string[] = [];
  private process!: ChildProcess;

  constructor(
    readonly url: string,
    private readonly configFile: string,
    private readonly port: number,
  ) {}

  get child(): ChildProcess {
    return this.process;
  }

  async start(): Promise<void> {
    const child = spawn(natsServerCommand(), ['-c', this.configFile, '-js'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.process = child;
    const keep = (chunk: Buffer): void => {
      this.log.push(chunk.toString('utf8'));
      if (this.log.length > 2000) this.log.splice(0, this.log.length - 2000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    const failed = new Promise<never>((_, reject) => {
      child.once('error', (error) =>
        reject(new Error(`nats-server could not start (apt-get install nats-server): ${error}`)),
      );
      child.once('exit', (code) =>
        reject(new Error(`nats-server exited with ${code} during start-up:\n${this.log.join('')}`)),
      );
    });
    failed.catch(() => undefined);
    try {
      await Promise.race([failed, listening(this.port)]);
    } catch (error) {
      child.kill('SIGKILL');
      throw error;
    }
  }

  /** Stops the server at once (SIGKILL), as a crash or a network cut would. */
  async stop(): Promise<void> {
    const child = this.process;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Starts a nats-server of its own on 127.0.0.1:`port` with the configuration the containers
 * run (TLS, client certificates verified and mapped to one user per service, each held to its
 * subjects), but host paths: the certificates of `secretsDir` and JetStream under `workDir`.
 * Adds {@link E2E_NATS_USER}, with a certificate from the same CA.
 */
export async function startTlsNatsServer(
  workDir: string,
  secretsDir: string,
  port: number,
): Promise<RunningNatsServer> {
  ensureDevelopmentCertificates(secretsDir, [E2E_NATS_USER]);
  const secret = (name: string): string => join(secretsDir, name);
  const configFile = join(workDir, 'nats.conf');
  writeFileSync(
    configFile,
    renderNatsServerConfig({
      serverName: `portcullis-e2e-${port}`,
      host: '127.0.0.1',
      port,
      jetStreamStoreDir: join(workDir, 'nats'),
      tls: {
        caFile: secret(TLS_NAMES.caCertificate),
        certFile: secret(TLS_NAMES.certificate(TLS_NAMES.natsServer)),
        keyFile: secret(TLS_NAMES.key(TLS_NAMES.natsServer)),
      },
      extraUsers: {
        [E2E_NATS_USER]: { publish: ['>'], subscribe: ['>'], allowResponses: true },
      },
    }),
  );
  const server = new RunningNatsServer(`tls://127.0.0.1:${port}`, configFile, port);
  await server.start();
  return server;
}

/** Debian installs nats-server in /usr/sbin, which is not on every PATH. */
function natsServerCommand(): string {
  const candidates = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((directory) => join(directory, 'nats-server'));
  return [...candidates, '/usr/sbin/nats-server'].find((path) => existsSync(path)) ?? 'nats-server';
}

async function listening(port: number): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`nats-server did not listen on 127.0.0.1:${port} in time`);
}
