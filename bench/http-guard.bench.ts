import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import autocannon from 'autocannon';

import { median, table } from './measure';

/** Median requests per second and p99 latency of one route variant. */
export interface HttpFigure {
  readonly variant: string;
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  /** Guarded over public requests per second, per round (public: all 1). */
  readonly ratios: readonly number[];
  /** The server's CPU time per request served, median over the rounds, in microseconds. */
  readonly cpuMicroseconds: number;
}

interface Run {
  readonly result: autocannon.Result;
  readonly cpuMicroseconds: number;
}

const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 6);
const CONNECTIONS = Number(process.env.BENCH_HTTP_CONNECTIONS ?? 10);

/**
 * Starts the bench server on 127.0.0.1 and resolves with its URL and a customer token. At
 * `LOG_LEVEL=log` it writes a line per request; its stdout is drained once it is ready.
 */
export function startServer(
  logLevel = 'error',
): Promise<{ child: ChildProcess; url: string; token: string; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const child = spawn(process.execPath, [join(__dirname, 'bench-server.js')], {
    env: {
      PATH: process.env.PATH ?? '',
      NODE_ENV: 'development',
      HOST: '127.0.0.1',
      PORT: '0',
      DATA_DIR: join(dir, 'data'),
      SECRETS_DIR: join(dir, 'secrets'),
      LOG_LEVEL: logLevel,
      SWAGGER_ENABLED: 'false',
      // Raised through configuration only: the limits would otherwise throttle the run.
      RATE_LIMIT_PER_IP: '100000000',
      RATE_LIMIT_PER_USER: '100000000',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => reject(new Error('the bench server did not start')), 180_000);
    child.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      const line = output.split('\n').find((l) => l.startsWith('BENCH-READY '));
      if (!line) return;
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.stdout?.resume();
      const { url, token } = JSON.parse(line.slice('BENCH-READY '.length)) as {
        url: string;
        token: string;
      };
      resolve({ child, url: url.replace('[::1]', '127.0.0.1'), token, dir });
    };
    child.stdout?.on('data', onData);
  });
}

async function serverCpu(base: string): Promise<number> {
  const response = await fetch(`${base}/bench/cpu`);
  return ((await response.json()) as { microseconds: number }).microseconds;
}

/** One autocannon run, with the server's CPU time per request it served. */
export async function load(
  base: string,
  url: string,
  token: string,
  seconds: number,
): Promise<Run> {
  const before = await serverCpu(base);
  const result = await autocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    // The same header on both routes, so that the only difference is the guard's work.
    headers: { authorization: `Bearer ${token}` },
  });
  if (result.non2xx > 0 || result.errors > 0) {
    throw new Error(`${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors`);
  }
  const cpu = (await serverCpu(base)) - before;
  return { result, cpuMicroseconds: cpu / result.requests.total };
}

/**
 * The same small route, public and guarded, in one process under autocannon on 127.0.0.1:
 * a warm-up, then `ROUNDS` rounds, each running both routes back to back and alternating
 * which goes first. The guarded route's token is verified once and then answered from the
 * verified-token cache. The ratio is the median of the rounds' own ratios, which pairs runs
 * made moments apart on a machine whose speed drifts.
 */
export async function runHttpBenchmark(): Promise<HttpFigure[]> {
  const server = await startServer();
  try {
    const routes = {
      public: `${server.url}/bench/public`,
      guarded: `${server.url}/bench/guarded`,
    };
    await load(server.url, routes.public, server.token, 2);
    await load(server.url, routes.guarded, server.token, 2);

    const results: Record<'public' | 'guarded', Run[]> = { public: [], guarded: [] };
    for (let round = 0; round < ROUNDS; round++) {
      const order =
        round % 2 === 0 ? (['public', 'guarded'] as const) : (['guarded', 'public'] as const);
      for (const variant of order) {
        results[variant].push(await load(server.url, routes[variant], server.token, DURATION_S));
      }
    }
    const ratios = results.guarded.map(
      (run, round) => run.result.requests.average / results.public[round].result.requests.average,
    );
    return (['public', 'guarded'] as const).map((variant) => ({
      variant,
      requestsPerSecond: median(results[variant].map((run) => run.result.requests.average)),
      p99Ms: median(results[variant].map((run) => run.result.latency.p99)),
      ratios: variant === 'public' ? ratios.map(() => 1) : ratios,
      cpuMicroseconds: median(results[variant].map((run) => run.cpuMicroseconds)),
    }));
  } finally {
    server.child.kill('SIGTERM');
    rmSync(server.dir, { recursive: true, force: true });
  }
}

/**
 * The figures as a table. Requests per second are what the issue asks for; the server's CPU
 * time per request is the steadier measure of what the guard costs on a shared machine, and
 * its inverse ratio is the throughput the guarded route keeps when the server is the limit.
 */
export function httpTable(figures: readonly HttpFigure[]): string {
  const openCpu = figures.find((f) => f.variant === 'public')?.cpuMicroseconds ?? NaN;
  return table(
    [
      'route (GET, same handler)',
      'requests/s (median)',
      'p99 ms (median)',
      'vs. public (median of rounds)',
      'rounds (min-max)',
      'server µs CPU/request',
      'vs. public by CPU',
    ],
    figures.map((f) => [
      f.variant === 'public' ? 'public (@Public())' : 'guarded (@Roles, cached token)',
      Math.round(f.requestsPerSecond).toLocaleString('en-US'),
      f.p99Ms.toFixed(2),
      `${median(f.ratios).toFixed(2)}x`,
      `${Math.min(...f.ratios).toFixed(2)}-${Math.max(...f.ratios).toFixed(2)}x`,
      f.cpuMicroseconds.toFixed(1),
      `${(openCpu / f.cpuMicroseconds).toFixed(2)}x`,
    ]),
  );
}
