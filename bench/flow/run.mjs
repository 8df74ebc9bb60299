#!/usr/bin/env node
// `npm run bench:flow`: the order flow under load. Starts a deployment of its own from dist/
// (split: auth, orders and billing as three processes on a TLS NATS with a certificate per
// app; postgres-nats: the one platform process), drives it, prints throughput, latency,
// invoice lag, status counts, CPU per order and peak memory of every process it started,
// and stops and removes everything it started. Only 127.0.0.1 is contacted.
//
//   npm run bench:flow -- [--shape split|postgres-nats|baseline] [-c 16] [-d 20] [--warmup 5]
//                         [--runs 1] [--users 64] [--sample-every 10] [--cpu-prof]
//                         [--count-queries] [--nats-tls|--no-nats-tls] [--json file]
//                         [--keep dir] [--reads]
//
// --reads measures reads instead of orders: each customer places one order, then the clients
// only read invoices (GET /billing/invoices?orderId=), and every figure is per read.
//
// Flags fall back to FLOW_SHAPE, FLOW_CONCURRENCY, FLOW_DURATION_SECONDS. PostgreSQL comes
// from BENCH_DATABASE_URL (else TEST_DATABASE_URL, else postgres://postgres@127.0.0.1:5432/
// postgres); a database is created on it for each run and dropped afterwards.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { loadavg, cpus } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { backendPids, databaseCounters, startDeployment } from './deployment.mjs';
import { HttpClient } from './http-client.mjs';
import { runOrderLoad, runReadLoad, signUpCustomers } from './load.mjs';
import { cpuSnapshot, cpuSpent, peakRssMiB, waitMs, waitSnapshot } from './proc-stats.mjs';
import { printSummary, summarise } from './profile-summary.mjs';

const HERE = import.meta.dirname;

const USAGE = `npm run bench:flow -- [options]
  --shape split|postgres-nats|baseline  what to start (default split)
  -c, --concurrency N     clients placing orders one after another (16)
  -d, --duration S        measured seconds (20); --warmup S before it (5)
  --runs N                rounds, each on a fresh deployment (1)
  --users N               customers signed up and used in turn (64)
  --sample-every N        follow one order in N until its invoice appears (10)
  --reads                 read invoices instead of placing orders; figures per read
  --cpu-prof              profile each app and summarise the measured window
  --count-queries         count each app's SQL statements per order
  --nats-tls, --no-nats-tls   TLS to NATS (default: on in the split shape only)
  --json FILE             write the results as JSON
  --keep DIR              keep logs and profiles in DIR
`;

function parseArgs(argv) {
  const env = process.env;
  const options = {
    shape: env.FLOW_SHAPE ?? 'split',
    concurrency: Number(env.FLOW_CONCURRENCY ?? 16),
    durationSeconds: Number(env.FLOW_DURATION_SECONDS ?? 20),
    warmupSeconds: 5,
    runs: 1,
    users: 64,
    sampleEvery: 10,
    cpuProf: false,
    countQueries: false,
    natsTls: undefined,
    json: undefined,
    keepDir: undefined,
    reads: false,
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    const value = () => {
      i += 1;
      if (argv[i] === undefined) throw new Error(`${arg} needs a value`);
      return argv[i];
    };
    switch (arg) {
      case '--shape':
        options.shape = value();
        break;
      case '-c':
      case '--concurrency':
        options.concurrency = Number(value());
        break;
      case '-d':
      case '--duration':
        options.durationSeconds = Number(value());
        break;
      case '--warmup':
        options.warmupSeconds = Number(value());
        break;
      case '--runs':
        options.runs = Number(value());
        break;
      case '--users':
        options.users = Number(value());
        break;
      case '--sample-every':
        options.sampleEvery = Number(value());
        break;
      case '--cpu-prof':
        options.cpuProf = true;
        break;
      case '--count-queries':
        options.countQueries = true;
        break;
      case '--nats-tls':
        options.natsTls = true;
        break;
      case '--no-nats-tls':
        options.natsTls = false;
        break;
      case '--json':
        options.json = resolve(value());
        break;
      case '--reads':
        options.reads = true;
        break;
      case '-h':
      case '--help':
        process.stdout.write(USAGE);
        process.exit(0);
        break;
      case '--keep':
        options.keepDir = resolve(value());
        break;
      default:
        throw new Error(`unknown argument ${arg}`);
    }
  }
  if (!['split', 'postgres-nats', 'baseline'].includes(options.shape)) {
    throw new Error(`--shape is split, postgres-nats or baseline, not ${options.shape}`);
  }
  for (const name of ['concurrency', 'durationSeconds', 'runs', 'users', 'sampleEvery']) {
    if (!(Number.isInteger(options[name]) && options[name] > 0)) {
      throw new Error(`${name} must be a positive integer`);
    }
  }
  // As the end-to-end harness does: TLS with a certificate per app in the split shape.
  options.natsTls ??= options.shape === 'split';
  if (options.shape === 'baseline' && options.natsTls) {
    throw new Error('the baseline speaks plain NATS only');
  }
  return options;
}

async function natsCounters(monitorUrl) {
  try {
    const varz = await (await fetch(`${monitorUrl}/varz`)).json();
    return { msgs: varz.in_msgs + varz.out_msgs, bytes: varz.in_bytes + varz.out_bytes };
  } catch {
    return undefined;
  }
}

/** Statement counts per app between the two snapshots the preload wrote. */
function queryCounts(directory, pidToName) {
  const byPid = new Map();
  for (const file of readdirSync(directory)) {
    const [pid, n] = file.replace('.json', '').split('-').map(Number);
    const entry = byPid.get(pid) ?? {};
    entry[n] = JSON.parse(readFileSync(join(directory, file), 'utf8'));
    byPid.set(pid, entry);
  }
  const result = {};
  for (const [pid, snapshots] of byPid) {
    const before = snapshots[1] ?? {};
    const after = snapshots[2] ?? {};
    const delta = {};
    for (const [statement, count] of Object.entries(after)) {
      const d = count - (before[statement] ?? 0);
      if (d > 0) delta[statement] = d;
    }
    result[pidToName.get(pid) ?? String(pid)] = delta;
  }
  return result;
}

async function runOnce(options, round) {
  const databaseUrl =
    process.env.BENCH_DATABASE_URL ??
    process.env.TEST_DATABASE_URL ??
    'postgres://postgres@127.0.0.1:5432/postgres';
  const keepDir =
    options.keepDir ??
    (options.cpuProf || options.countQueries
      ? join(HERE, '..', '..', '.flow', `${options.shape}-${Date.now()}`)
      : undefined);
  const nodeArgs = [];
  const preload = [];
  const appEnv = {
    // Every request of the driver comes from 127.0.0.1, where a gateway would pass many client
    // addresses, and a handful of customers place all the orders: both limits are raised
    // through their documented settings so that they do not bind.
    RATE_LIMIT_PER_IP: '100000000',
    RATE_LIMIT_PER_USER: '100000000',
  };
  if (keepDir) mkdirSync(keepDir, { recursive: true });
  if (options.shape === 'baseline') {
    // The yardstick is compiled with the benchmarks, not with the apps.
    execFileSync('npx', ['nest', 'build', '-p', 'tsconfig.bench.json'], {
      cwd: join(HERE, '..', '..'),
      stdio: 'inherit',
    });
  }
  if (options.cpuProf) {
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${join(keepDir, 'profiles')}`);
  }
  if (options.countQueries) {
    const directory = join(keepDir, 'queries');
    mkdirSync(directory, { recursive: true });
    preload.push(join(HERE, 'count-queries.mjs'));
    appEnv.FLOW_QUERY_COUNTS_DIR = directory;
  }

  const startedAt = Date.now();
  const deployment = await startDeployment({
    shape: options.shape,
    databaseUrl,
    natsTls: options.natsTls,
    env: appEnv,
    nodeArgs,
    preload,
    keepDir,
  });
  // Interrupted (Ctrl-C), it still stops what it started and drops its database.
  const interrupted = () => {
    process.stderr.write('interrupted: stopping the deployment\n');
    void deployment.stop().finally(() => process.exit(130));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const http = new HttpClient((path) => deployment.url(path), options.concurrency * 2 + 16);
  const apps = [...deployment.processes].filter(([, p]) => p.app);
  const all = [...deployment.processes];
  const pidToName = new Map(all.map(([name, p]) => [p.pid, name]));
  let result;
  try {
    process.stdout.write(
      `round ${round}: ${options.shape} up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s` +
        ` (${all.map(([name, p]) => `${name} ${p.pid}`).join(', ')})` +
        (options.shape === 'baseline' ? '\n' : `; signing up ${options.users} customers\n`),
    );
    // The baseline has no accounts: its clients send no token.
    const tokens =
      options.shape === 'baseline' ? [undefined] : await signUpCustomers(http, options.users);
    const edges = {};
    const snapshot = async () => {
      const backends = await backendPids(databaseUrl, deployment.databaseName);
      if (options.countQueries) for (const [, p] of apps) p.child.kill('SIGWINCH');
      return {
        at: process.hrtime.bigint() / 1000n,
        load: loadavg()[0],
        cpu: cpuSnapshot(all.map(([, p]) => p.pid)),
        backends: cpuSnapshot(backends),
        waits: waitSnapshot(all.map(([, p]) => p.pid)),
        backendWaits: waitSnapshot(backends),
        driver: process.cpuUsage(),
        driverWait: waitMs(process.pid),
        nats: await natsCounters(deployment.natsMonitorUrl),
      };
    };
    const load = await (options.reads ? runReadLoad : runOrderLoad)(http, {
      tokens,
      concurrency: options.concurrency,
      warmupMs: options.warmupSeconds * 1000,
      durationMs: options.durationSeconds * 1000,
      sampleEvery: options.sampleEvery,
      onMeasureStart: async () => {
        edges.start = await snapshot();
        edges.dbStart = await databaseCounters(databaseUrl, deployment.databaseName);
      },
      onMeasureEnd: async () => {
        edges.end = await snapshot();
      },
    });
    // PostgreSQL publishes a backend's counters about once a second: let them settle.
    await sleep(1500);
    edges.dbEnd = await databaseCounters(databaseUrl, deployment.databaseName);

    const perOrder = (value) => (load.orders > 0 ? value / load.orders : NaN);
    const processes = all.map(([name, p]) => ({
      name,
      pid: p.pid,
      cpuMsPerOrder: perOrder(edges.end.cpu.get(p.pid) - edges.start.cpu.get(p.pid)),
      cpuCores: (edges.end.cpu.get(p.pid) - edges.start.cpu.get(p.pid)) / load.elapsedMs,
      waitMsPerOrder: perOrder(edges.end.waits.get(p.pid) - edges.start.waits.get(p.pid)),
      peakRssMiB: peakRssMiB(p.pid),
    }));
    const postgresMs = cpuSpent(edges.start.backends, edges.end.backends);
    const postgresWaitMs = cpuSpent(edges.start.backendWaits, edges.end.backendWaits);
    const driverUs =
      edges.end.driver.user +
      edges.end.driver.system -
      edges.start.driver.user -
      edges.start.driver.system;
    const db = Object.fromEntries(
      Object.keys(edges.dbEnd).map((key) => [key, perOrder(edges.dbEnd[key] - edges.dbStart[key])]),
    );
    const nats =
      edges.start.nats && edges.end.nats
        ? {
            msgsPerOrder: perOrder(edges.end.nats.msgs - edges.start.nats.msgs),
            bytesPerOrder: perOrder(edges.end.nats.bytes - edges.start.nats.bytes),
          }
        : undefined;
    result = {
      shape: options.shape,
      unit: options.reads ? 'read' : 'order',
      natsTls: options.natsTls,
      concurrency: options.concurrency,
      durationSeconds: options.durationSeconds,
      users: options.users,
      loadAverage: { start: edges.start.load, end: edges.end.load },
      ...load,
      processes,
      postgresBackends: {
        cpuMsPerOrder: perOrder(postgresMs),
        cpuCores: postgresMs / load.elapsedMs,
        waitMsPerOrder: perOrder(postgresWaitMs),
      },
      driver: {
        cpuMsPerOrder: perOrder(driverUs / 1000),
        cpuCores: driverUs / 1000 / load.elapsedMs,
        waitMsPerOrder: perOrder(edges.end.driverWait - edges.start.driverWait),
      },
      databasePerOrder: db,
      natsPerOrder: nats,
      window: { fromUs: Number(edges.start.at), toUs: Number(edges.end.at) },
      keptIn: keepDir,
    };
  } finally {
    process.off('SIGINT', interrupted);
    process.off('SIGTERM', interrupted);
    http.close();
    await deployment.stop();
  }
  if (options.countQueries) {
    result.statementsPerOrder = {};
    const counts = queryCounts(join(keepDir, 'queries'), pidToName);
    for (const [name, statements] of Object.entries(counts)) {
      const total = Object.values(statements).reduce((a, b) => a + b, 0);
      result.statementsPerOrder[name] = {
        total: total / result.orders,
        statements: Object.fromEntries(
          Object.entries(statements)
            .sort((a, b) => b[1] - a[1])
            .map(([statement, count]) => [statement, count / result.orders]),
        ),
      };
    }
  }
  if (options.cpuProf) {
    result.profiles = {};
    const directory = join(keepDir, 'profiles');
    for (const file of readdirSync(directory).filter((name) => name.endsWith('.cpuprofile'))) {
      // CPU.<date>.<time>.<pid>.<thread id>.<sequence>.cpuprofile: thread 0 is the main
      // thread, the others are worker threads (signature verification).
      const [pid, thread] = file.split('.').slice(3, 5).map(Number);
      const app = pidToName.get(pid) ?? String(pid);
      const name = thread === 0 ? app : `${app}, worker thread ${thread}`;
      const profile = JSON.parse(readFileSync(join(directory, file), 'utf8'));
      result.profiles[name] = {
        file: join(directory, file),
        mainThread: thread === 0,
        summary: summarise(profile, { from: result.window.fromUs, to: result.window.toUs }),
      };
    }
  }
  return result;
}

const fixed = (value, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

function report(result) {
  const unit = result.unit;
  const reads = unit === 'read';
  const statuses = Object.entries(result.statuses)
    .map(([status, count]) => `${status}: ${count}`)
    .join(', ');
  const lines = [
    `${result.shape} (NATS ${result.natsTls ? 'TLS, a certificate per app' : 'plain'}),` +
      ` ${result.concurrency} clients, ${result.durationSeconds} s,` +
      ` ${result.shape === 'baseline' ? 'no accounts' : `${result.users} customers`};` +
      ` load average ${fixed(result.loadAverage.start, 2)} -> ${fixed(result.loadAverage.end, 2)}`,
    `  ${`${unit}s/s`.padEnd(18)}  ${fixed(result.ordersPerSecond)}  (${result.orders} ${unit}s)`,
    `  ${reads ? 'GET invoices ms' : 'POST /orders ms'}     p50 ${fixed(result.post.p50)}` +
      `  p90 ${fixed(result.post.p90)}  p99 ${fixed(result.post.p99)}`,
    ...(reads
      ? []
      : [
          `  invoice lag ms      p50 ${fixed(result.invoiceLag.p50)}  p90 ${fixed(result.invoiceLag.p90)}` +
            `  p99 ${fixed(result.invoiceLag.p99)}  max ${fixed(result.invoiceLag.max)}` +
            `  (${result.invoiceLag.samples} sampled, ${result.invoicePolls} polls,` +
            ` ${result.invoiceMissing} never seen)`,
          `  GET invoices ms     p50 ${fixed(result.poll.p50)}  p90 ${fixed(result.poll.p90)}` +
            `  p99 ${fixed(result.poll.p99)}  (each poll, as the sampler waits for invoices)`,
        ]),
    `  statuses            ${statuses}`,
    `  process             ${`CPU ms/${unit}`.padStart(12)}  cores  ${`waited ms/${unit}`.padStart(15)}  peak RSS MiB`,
    ...result.processes.map(
      (p) =>
        `  ${p.name.padEnd(18)}  ${fixed(p.cpuMsPerOrder, 3).padStart(12)}  ${fixed(p.cpuCores, 2).padStart(5)}` +
        `  ${fixed(p.waitMsPerOrder, 3).padStart(15)}  ${fixed(p.peakRssMiB, 0).padStart(12)}`,
    ),
    `  ${'postgres backends'.padEnd(18)}  ${fixed(result.postgresBackends.cpuMsPerOrder, 3).padStart(12)}` +
      `  ${fixed(result.postgresBackends.cpuCores, 2).padStart(5)}` +
      `  ${fixed(result.postgresBackends.waitMsPerOrder, 3).padStart(15)}`,
    `  ${'load driver'.padEnd(18)}  ${fixed(result.driver.cpuMsPerOrder, 3).padStart(12)}` +
      `  ${fixed(result.driver.cpuCores, 2).padStart(5)}  ${fixed(result.driver.waitMsPerOrder, 3).padStart(15)}` +
      `  ${fixed(process.memoryUsage().rss / 2 ** 20, 0).padStart(12)}`,
    `  ${`per ${unit}`.padEnd(18)}  ${fixed(result.databasePerOrder.xact_commit, 2)} commits,` +
      ` ${fixed(result.databasePerOrder.tup_inserted, 2)} rows inserted,` +
      ` ${fixed(result.databasePerOrder.tup_updated, 2)} updated,` +
      ` ${fixed(result.databasePerOrder.tup_deleted, 2)} deleted` +
      (result.natsPerOrder
        ? `; NATS ${fixed(result.natsPerOrder.msgsPerOrder, 1)} messages` +
          ` (in + out), ${fixed(result.natsPerOrder.bytesPerOrder, 0)} bytes`
        : ''),
  ];
  if (result.statementsPerOrder) {
    for (const [name, { total, statements }] of Object.entries(result.statementsPerOrder)) {
      lines.push(`  statements per order sent by ${name}: ${fixed(total, 2)}`);
      for (const [statement, count] of Object.entries(statements).slice(0, 25)) {
        lines.push(`    ${fixed(count, 2).padStart(6)}  ${statement.slice(0, 110)}`);
      }
    }
  }
  process.stdout.write(`${lines.join('\n')}\n`);
  if (result.profiles) {
    for (const [name, { file, mainThread, summary }] of Object.entries(result.profiles)) {
      // The process's CPU time counts all its threads: a main thread's shares are taken of it
      // less its workers' busy time, a worker's of its own busy time.
      const workersMs = Object.entries(result.profiles)
        .filter(([other, p]) => !p.mainThread && other.startsWith(`${name}, `))
        .reduce((sum, [, p]) => sum + p.summary.busyMs, 0);
      const processMs = result.processes.find((p) => p.name === name)?.cpuMsPerOrder;
      const cpu = mainThread
        ? processMs === undefined
          ? undefined
          : processMs - workersMs / result.orders
        : summary.busyMs / result.orders;
      printSummary(`  profile of ${name} (${file})`, summary, 20, cpu);
    }
  }
  if (result.keptIn) process.stdout.write(`  logs and profiles kept in ${result.keptIn}\n`);
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const model = cpus()[0]?.model ?? 'cpu';
  process.stdout.write(`node ${process.version}, ${cpus().length} x ${model}\n`);
  const results = [];
  for (let round = 1; round <= options.runs; round += 1) {
    const result = await runOnce(options, round);
    report(result);
    results.push(result);
  }
  if (options.json) {
    const kept = results.map(({ profiles, ...rest }) => ({
      ...rest,
      profiles: profiles
        ? Object.fromEntries(
            Object.entries(profiles).map(([name, { file, summary }]) => [
              name,
              { file, ...summary, functions: summary.functions.slice(0, 60) },
            ]),
          )
        : undefined,
    }));
    writeFileSync(options.json, JSON.stringify(kept, null, 2));
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    process.stderr.write(`bench:flow failed: ${error instanceof Error ? error.stack : error}\n`);
    process.exit(1);
  },
);
