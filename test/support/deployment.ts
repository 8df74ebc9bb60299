import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  type WriteStream,
  createWriteStream,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Client } from 'pg';

import {
  E2E_NATS_USER,
  type NatsClientOptions,
  type RunningNatsServer,
  natsClientOptions,
  natsTlsEnv,
  startTlsNatsServer,
} from './nats-server';
import { freePort } from './free-port';

/** The shapes the end-to-end suite runs against. */
export type ShapeName = 'embedded' | 'postgres-nats' | 'split';

export type ServiceName = 'auth' | 'orders' | 'billing';

export const ADMIN = { email: 'admin@portcullis.test', password: 'bootstrap secret for tests 42' };

const ROOT = resolve(process.env.PORTCULLIS_ROOT ?? process.cwd());
const STARTUP_TIMEOUT_MS = 90_000;

/** Which shapes this environment can run: embedded always, the others with real servers. */
export function availableShapes(): ShapeName[] {
  const requested = process.env.E2E_SHAPES?.split(',').filter(Boolean) as ShapeName[] | undefined;
  if (requested?.length) return requested;
  const real = process.env.TEST_DATABASE_URL && process.env.TEST_NATS_URL;
  return real ? ['embedded', 'postgres-nats', 'split'] : ['embedded'];
}

/** One app's OS process, with what it takes to start it again. */
interface AppProcess {
  child: ChildProcess;
  port: number;
  log: string[];
  env: Record<string, string>;
  /** Where its whole stdout is written, when the deployment captures it. */
  stdoutFile?: string;
}

/** How a deployment starts, beyond its environment and secrets. */
export interface DeploymentOptions {
  /**
   * Writes each process's whole stdout (its log lines) to `<app>.stdout.log` in the
   * deployment's work directory, read back with {@link Deployment.stdout}. Off by default.
   */
  captureStdout?: boolean;
}

/** A running deployment: processes started from the build output, as containers run them. */
export class Deployment {
  private constructor(
    readonly shape: ShapeName,
    private readonly processes: Map<string, AppProcess>,
    private readonly cleanups: Array<() => Promise<void> | void>,
    /** The deployment's SECRETS_DIR: its message-signing keys and trust file. */
    readonly secretsDir: string,
    /** The NATS server of the deployment, in the shapes that use one. */
    readonly natsUrl?: string,
    /** The deployment's own NATS server, which requires client certificates (split shape). */
    private readonly natsServer?: RunningNatsServer,
    /** The deployment's PostgreSQL database, in the shapes that use one. */
    readonly databaseUrl?: string,
  ) {}

  /**
   * Options of @nats-io/transport-node's `connect` to reach the deployment's NATS as `user`:
   * with that user's certificate from SECRETS_DIR/tls where the server requires one. The
   * default, {@link E2E_NATS_USER}, may publish and subscribe anywhere.
   */
  natsOptions(user = E2E_NATS_USER): { servers: string } & Partial<NatsClientOptions> {
    if (!this.natsUrl) throw new Error(`the ${this.shape} shape has no NATS bus`);
    return this.natsServer
      ? { servers: this.natsUrl, ...natsClientOptions(this.secretsDir, user) }
      : { servers: this.natsUrl };
  }

  /** The deployment's own NATS server, to stop and start it (split shape only). */
  ownNatsServer(): RunningNatsServer {
    if (!this.natsServer) throw new Error(`the ${this.shape} shape runs no NATS server of its own`);
    return this.natsServer;
  }

  /** What the deployment's own NATS server printed (refused connections, violations). */
  natsServerLog(): string {
    return this.natsServer?.log.join('') ?? '';
  }

  /** Base URL of the process that serves a path, as a gateway would route it. */
  urlFor(path: string): string {
    const service: ServiceName = path.startsWith('/billing')
      ? 'billing'
      : path.startsWith('/orders') || path.startsWith('/products')
        ? 'orders'
        : 'auth';
    const entry = this.processes.get(this.shape === 'split' ? service : 'platform');
    if (!entry) throw new Error(`no process serves ${path}`);
    return `http://127.0.0.1:${entry.port}${path}`;
  }

  /** Every process's base URL, for checks that apply to each (health, docs). */
  baseUrls(): string[] {
    return [...this.processes.values()].map(({ port }) => `http://127.0.0.1:${port}`);
  }

  /** Captured stdout and stderr of every process, or of one (`platform`, `auth`, `orders`...). */
  logs(app?: string): string {
    return [...this.processes]
      .filter(([name]) => app === undefined || name === app)
      .map(([name, p]) => `--- ${name}\n${p.log.join('')}`)
      .join('\n');
  }

  /** Everything a process wrote to stdout so far; needs the `captureStdout` option. */
  stdout(app: string): string {
    const file = this.processes.get(app)?.stdoutFile;
    if (!file) throw new Error(`the stdout of ${app} is not captured in this deployment`);
    return readFileSync(file, 'utf8');
  }

  /** The app process that serves a path: `platform` in one process, else auth, orders... */
  appFor(path: string): string {
    if (this.shape !== 'split') return 'platform';
    if (path.startsWith('/billing')) return 'billing';
    return path.startsWith('/orders') || path.startsWith('/products') ? 'orders' : 'auth';
  }

  /** Kills one app's process at once (SIGKILL): no shutdown hook runs, as in a crash. */
  async kill(app: string): Promise<void> {
    const entry = this.processes.get(app);
    if (!entry || entry.child.exitCode !== null || entry.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => entry.child.once('exit', () => resolve()));
    entry.child.kill('SIGKILL');
    await exited;
  }

  /** Starts a killed app again on its port with its settings, and waits until it is healthy. */
  async restart(app: string): Promise<void> {
    const entry = this.processes.get(app);
    if (!entry) throw new Error(`no app ${app} in this deployment`);
    const next = startProcess(app, entry.env, entry.port, entry.stdoutFile);
    next.log.unshift(...entry.log);
    this.processes.set(app, next);
    await waitForHealth(app, next.port, next.child, next.log);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.values()].map(({ child }) => stopProcess(child)));
    for (const cleanup of this.cleanups.reverse()) await cleanup();
  }

  /**
   * Starts the shape's processes. Rate limits are raised far above what the suites send,
   * unless `extraEnv` (applied last, to every process) sets them. `secretFiles` (name relative
   * to SECRETS_DIR, contents) are written beside the development secrets before any app starts.
   * `PUBLIC_URL` defaults to each process's own base URL.
   */
  static async start(
    shape: ShapeName,
    extraEnv: Record<string, string> = {},
    secretFiles: Record<string, string> = {},
    options: DeploymentOptions = {},
  ): Promise<Deployment> {
    const workDir = mkdtempSync(join(tmpdir(), `portcullis-e2e-${shape}-`));
    const cleanups: Array<() => Promise<void> | void> = [
      () => rmSync(workDir, { recursive: true, force: true }),
    ];
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'test',
      HOST: '127.0.0.1',
      DATA_DIR: join(workDir, 'data'),
      SECRETS_DIR: join(workDir, 'secrets'),
      LOG_FORMAT: 'json',
      LOG_LEVEL: 'warn',
      BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
      BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
      RATE_LIMIT_PER_IP: '1000000',
      RATE_LIMIT_PER_USER: '1000000',
    };
    execFileSync(process.execPath, ['dist/scripts/secrets-init.js'], {
      cwd: ROOT,
      env,
      stdio: 'ignore',
    });

    let natsServer: RunningNatsServer | undefined;
    if (shape !== 'embedded') {
      const database = await createDatabase();
      cleanups.push(database.drop);
      env.DATABASE_URL = database.url;
      if (shape === 'split') {
        // Its own server, configured as in the containers: TLS, a user per service.
        const nats = await startTlsNatsServer(workDir, env.SECRETS_DIR, await freePort());
        cleanups.push(() => stopProcess(nats.child));
        env.NATS_URL = nats.url;
        natsServer = nats;
      } else {
        env.NATS_URL = requireEnv('TEST_NATS_URL');
        await forgetEarlierEvents(env.NATS_URL);
      }
      env.NATS_QUEUE = `e2e-${randomBytes(6).toString('hex')}`;
    }

    Object.assign(env, extraEnv);
    for (const [name, contents] of Object.entries(secretFiles)) {
      const path = join(env.SECRETS_DIR, name);
      mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
      writeFileSync(path, contents, { mode: 0o600 });
    }

    const apps = shape === 'split' ? ['auth', 'orders', 'billing'] : ['platform'];
    const processes = new Map<string, AppProcess>();
    const deployment = new Deployment(
      shape,
      processes,
      cleanups,
      env.SECRETS_DIR,
      env.NATS_URL,
      natsServer,
      env.DATABASE_URL,
    );
    try {
      for (const app of apps) {
        const port = await freePort();
        const defaults = {
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          // Each app connects with its own certificate, so NATS holds it to its own subjects.
          ...(natsServer ? natsTlsEnv(env.SECRETS_DIR, app) : {}),
        };
        // NATS_QUEUE is shared by replicas of one app, never by different apps: in one queue
        // group, an event every app subscribes to would reach only one of them.
        const own = {
          PORT: String(port),
          ...(env.NATS_QUEUE ? { NATS_QUEUE: `${env.NATS_QUEUE}.${app}` } : {}),
        };
        const stdoutFile = options.captureStdout ? join(workDir, `${app}.stdout.log`) : undefined;
        processes.set(app, startProcess(app, { ...defaults, ...env, ...own }, port, stdoutFile));
      }
      await Promise.all(
        [...processes].map(([name, p]) => waitForHealth(name, p.port, p.child, p.log)),
      );
    } catch (error) {
      await deployment.stop();
      throw error;
    }
    return deployment;
  }
}

function startProcess(
  app: string,
  env: Record<string, string>,
  port: number,
  stdoutFile?: string,
): AppProcess {
  const child = spawn(process.execPath, [`dist/apps/${app}/src/main.js`], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log: string[] = [];
  const keep = (chunk: Buffer): void => {
    log.push(chunk.toString('utf8'));
    if (log.length > 2000) log.splice(0, log.length - 2000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  if (stdoutFile) {
    // Appended, so a restarted process adds to what its predecessor wrote.
    const file: WriteStream = createWriteStream(stdoutFile, { flags: 'a' });
    child.stdout?.pipe(file);
  }
  return { child, port, log, env, stdoutFile };
}

async function waitForHealth(
  name: string,
  port: number,
  child: ChildProcess,
  log: string[],
): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with ${child.exitCode} during start-up:\n${log.join('')}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${name} did not become healthy in time:\n${log.join('')}`);
}

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

function requireEnv(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set for this shape`);
  return value;
}

/** A fresh database per deployment, dropped afterwards, so shapes never see each other's rows. */
export async function createDatabase(
  prefix = 'portcullis_e2e',
): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = requireEnv('TEST_DATABASE_URL');
  const name = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/**
 * The shared NATS of the postgres-nats shape outlives each deployment, and a new deployment's
 * durable consumers start from the first event of the stream: they would replay every earlier
 * deployment's events (and audit records) into this one. A NATS server belongs to one
 * deployment, so each deployment of that shape starts with the event streams removed.
 */
async function forgetEarlierEvents(url: string): Promise<void> {
  const connection = await connect({ servers: url });
  try {
    const manager = await jetstreamManager(connection);
    for (const stream of ['PORTCULLIS_EVENTS', 'PORTCULLIS_DLQ']) {
      await manager.streams.delete(stream).catch(() => false);
    }
  } finally {
    await connection.close();
  }
}
