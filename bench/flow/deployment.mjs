// Starts a deployment for the order-flow driver from the build output (dist/): a database of
// its own on the PostgreSQL server, a nats-server of its own on a free 127.0.0.1 port, and the
// apps of the shape as OS processes, started the way the containers start them. Everything it
// starts is stopped, and the database dropped, by stop().
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { URL } from 'node:url';

const ROOT = resolve(import.meta.dirname, '..', '..');
const require = createRequire(join(ROOT, 'package.json'));
require('reflect-metadata');
const { Client } = require('pg');

const STARTUP_TIMEOUT_MS = 90_000;
const STOP_GRACE_MS = 15_000;

export const ADMIN = { email: 'admin@flow.bench', password: 'bootstrap secret for the bench 42' };

/** A TCP port on 127.0.0.1 that nothing listens on at the moment. */
export function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => done(port));
    });
  });
}

/** Debian installs nats-server in /usr/sbin, which is not on every PATH. */
function natsServerCommand() {
  const candidates = (process.env.PATH ?? '')
    .split(delimiter)
    .filter(Boolean)
    .map((directory) => join(directory, 'nats-server'));
  return [...candidates, '/usr/sbin/nats-server'].find((path) => existsSync(path)) ?? 'nats-server';
}

async function listening(port, child, name) {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
    const open = await new Promise((done) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => done(false));
    });
    if (open) return;
    await sleep(100);
  }
  throw new Error(`${name} did not listen on 127.0.0.1:${port} in time`);
}

/** Creates a database of its own; the returned drop() removes it with every connection. */
async function createDatabase(adminUrl) {
  const name = `portcullis_flow_${randomBytes(6).toString('hex')}`;
  const admin = new Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    name,
    url: url.toString(),
    drop: async () => {
      const client = new Client({ connectionString: adminUrl });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await client.end();
    },
  };
}

/** Spawns a process whose output goes to a file in the work directory, not through us. */
function spawnLogged(command, args, env, logFile) {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

function tail(logFile, lines = 40) {
  try {
    return readFileSync(logFile, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

async function stopChild(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((done) => child.once('exit', done));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}

/**
 * @param {object} options
 * @param {'split'|'postgres-nats'|'baseline'} options.shape the baseline is the unsecured
 *   yardstick in bench/baseline (Express, plain NATS, no security), built into dist-bench/
 * @param {string} options.databaseUrl a URL of the PostgreSQL server, to create a database on
 * @param {boolean} options.natsTls TLS with a client certificate per app, as the containers run
 * @param {Record<string,string>} options.env settings for every app (documented ones only)
 * @param {string[]} options.nodeArgs extra arguments for each app's node (e.g. --cpu-prof)
 * @param {string[]} options.preload modules each app imports first (node --import)
 * @param {string} [options.keepDir] keep the work directory (logs, profiles) here
 */
export async function startDeployment(options) {
  const workDir = options.keepDir ?? mkdtempSync(join(tmpdir(), `portcullis-flow-`));
  mkdirSync(workDir, { recursive: true });
  const cleanups = [];
  if (!options.keepDir) cleanups.push(() => rmSync(workDir, { recursive: true, force: true }));
  const children = new Map();
  const deployment = {
    shape: options.shape,
    workDir,
    /** name -> { pid, port?, child, logFile } */
    processes: children,
    databaseName: '',
    natsMonitorUrl: '',
    url(path) {
      const service = path.startsWith('/billing')
        ? 'billing'
        : path.startsWith('/orders') || path.startsWith('/products')
          ? 'orders'
          : 'auth';
      const entry = children.get(options.shape === 'postgres-nats' ? 'platform' : service);
      return { host: '127.0.0.1', port: entry.port };
    },
    async stop() {
      await Promise.all(
        [...children.values()].filter((p) => p.app).map(({ child }) => stopChild(child)),
      );
      for (const p of children.values()) if (!p.app) await stopChild(p.child);
      for (const cleanup of cleanups.reverse()) await cleanup();
    },
  };

  try {
    const secretsDir = join(workDir, 'secrets');
    const env = {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'production',
      HOST: '127.0.0.1',
      DATA_DIR: join(workDir, 'data'),
      SECRETS_DIR: secretsDir,
      LOG_FORMAT: 'json',
      BOOTSTRAP_ADMIN_EMAIL: ADMIN.email,
      BOOTSTRAP_ADMIN_PASSWORD: ADMIN.password,
    };
    execFileSync(process.execPath, ['dist/scripts/secrets-init.js'], {
      cwd: ROOT,
      env: { ...env, NODE_ENV: 'development' },
      stdio: 'ignore',
    });

    const database = await createDatabase(options.databaseUrl);
    cleanups.push(database.drop);
    deployment.databaseName = database.name;
    deployment.databaseAdminUrl = options.databaseUrl;
    env.DATABASE_URL = database.url;

    const natsPort = await freePort();
    const monitorPort = await freePort();
    const natsDir = join(workDir, 'nats');
    mkdirSync(natsDir, { recursive: true });
    let natsArgs;
    if (options.natsTls) {
      const { renderNatsServerConfig } = require('./dist/libs/contracts/src/index.js');
      const { TLS_NAMES } = require('./dist/libs/crypto/src/index.js');
      const secret = (name) => join(secretsDir, name);
      const configFile = join(workDir, 'nats.conf');
      writeFileSync(
        configFile,
        renderNatsServerConfig({
          serverName: `portcullis-flow-${natsPort}`,
          host: '127.0.0.1',
          port: natsPort,
          httpPort: monitorPort,
          jetStreamStoreDir: natsDir,
          tls: {
            caFile: secret(TLS_NAMES.caCertificate),
            certFile: secret(TLS_NAMES.certificate(TLS_NAMES.natsServer)),
            keyFile: secret(TLS_NAMES.key(TLS_NAMES.natsServer)),
          },
        }),
      );
      natsArgs = ['-c', configFile, '-js'];
      env.NATS_URL = `tls://127.0.0.1:${natsPort}`;
    } else {
      natsArgs = ['-js', '-a', '127.0.0.1', '-p', String(natsPort), '-m', String(monitorPort)];
      natsArgs.push('-sd', natsDir);
      env.NATS_URL = `nats://127.0.0.1:${natsPort}`;
    }
    const natsLog = join(workDir, 'nats-server.log');
    const nats = spawnLogged(natsServerCommand(), natsArgs, { PATH: env.PATH }, natsLog);
    children.set('nats-server', { child: nats, pid: nats.pid, logFile: natsLog, app: false });
    await listening(natsPort, nats, 'nats-server').catch((error) => {
      throw new Error(`${error.message}\n${tail(natsLog)}`);
    });
    deployment.natsMonitorUrl = `http://127.0.0.1:${monitorPort}`;
    const queue = `flow-${randomBytes(6).toString('hex')}`;

    Object.assign(env, options.env);
    const apps = {
      split: ['auth', 'orders', 'billing'],
      'postgres-nats': ['platform'],
      baseline: ['orders', 'billing'],
    }[options.shape];
    for (const app of apps) {
      const port = await freePort();
      const tlsEnv = options.natsTls
        ? {
            NATS_TLS_CA_FILE: join(secretsDir, 'tls', 'ca.crt'),
            NATS_TLS_CERT_FILE: join(secretsDir, 'tls', `${app}.crt`),
            NATS_TLS_KEY_FILE: join(secretsDir, 'tls', `${app}.key`),
          }
        : {};
      const appEnv = {
        PUBLIC_URL: `http://127.0.0.1:${port}`,
        ...env,
        ...tlsEnv,
        PORT: String(port),
        NATS_QUEUE: `${queue}.${app}`,
      };
      const main =
        options.shape === 'baseline'
          ? ['dist-bench/bench/baseline/main.js', app]
          : [`dist/apps/${app}/src/main.js`];
      const args = [
        ...options.nodeArgs,
        ...options.preload.flatMap((file) => ['--import', file]),
        ...main,
      ];
      const logFile = join(workDir, `${app}.log`);
      const child = spawnLogged(process.execPath, args, appEnv, logFile);
      children.set(app, { child, pid: child.pid, port, logFile, app: true });
      // The baseline's orders process creates the tables billing writes to.
      if (options.shape === 'baseline') await waitForHealth(app, children.get(app));
    }
    await Promise.all(
      [...children].filter(([, p]) => p.app).map(([name, p]) => waitForHealth(name, p)),
    );
  } catch (error) {
    await deployment.stop();
    throw error;
  }
  return deployment;
}

async function waitForHealth(name, { port, child, logFile }) {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      throw new Error(`${name} exited with ${child.exitCode} during start-up:\n${tail(logFile)}`);
    }
    try {
      const response = await fetch(`http://127.0.0.1:${port}/health`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    await sleep(200);
  }
  throw new Error(`${name} did not become healthy in time:\n${tail(logFile)}`);
}

/** Pids of the PostgreSQL backends serving a database, to read their CPU time. */
export async function backendPids(adminUrl, databaseName) {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      'SELECT pid FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [databaseName],
    );
    return rows.map((row) => row.pid);
  } finally {
    await client.end();
  }
}

/** Transactions and row changes PostgreSQL counted for a database. */
export async function databaseCounters(adminUrl, databaseName) {
  const client = new Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const { rows } = await client.query(
      `SELECT xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,
              tup_updated, tup_deleted, blks_hit, blks_read
         FROM pg_stat_database WHERE datname = $1`,
      [databaseName],
    );
    return Object.fromEntries(Object.entries(rows[0] ?? {}).map(([k, v]) => [k, Number(v)]));
  } finally {
    await client.end();
  }
}
