import { rmSync } from 'node:fs';

import { load, startServer } from './http-guard.bench';
import { median, table } from './measure';

export interface LoggingFigure {
  readonly variant: 'request lines off' | 'request lines on';
  readonly requestsPerSecond: number;
  readonly p99Ms: number;
  readonly cpuMicroseconds: number;
}

const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 4);
const ROUNDS = Number(process.env.BENCH_HTTP_ROUNDS ?? 6);

/**
 * The guarded bench route in two bench servers side by side: one at `LOG_LEVEL=warn` (request
 * lines filtered out) and one at `LOG_LEVEL=log` (a JSON line per request, with redaction,
 * into a pipe), run in alternating rounds. Both record the request histogram.
 */
export async function runRequestLoggingBenchmark(): Promise<LoggingFigure[]> {
  const servers = {
    'request lines off': await startServer('warn'),
    'request lines on': await startServer('log'),
  };
  try {
    const variants = Object.keys(servers) as Array<keyof typeof servers>;
    const runs = Object.fromEntries(
      variants.map((v) => [v, [] as Awaited<ReturnType<typeof load>>[]]),
    );
    for (const variant of variants) {
      const server = servers[variant];
      await load(server.url, `${server.url}/bench/guarded`, server.token, 2);
    }
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? variants : [...variants].reverse();
      for (const variant of order) {
        const server = servers[variant];
        runs[variant].push(
          await load(server.url, `${server.url}/bench/guarded`, server.token, DURATION_S),
        );
      }
    }
    return variants.map((variant) => ({
      variant,
      requestsPerSecond: median(runs[variant].map((run) => run.result.requests.average)),
      p99Ms: median(runs[variant].map((run) => run.result.latency.p99)),
      cpuMicroseconds: median(runs[variant].map((run) => run.cpuMicroseconds)),
    }));
  } finally {
    for (const server of Object.values(servers)) {
      server.child.kill('SIGTERM');
      rmSync(server.dir, { recursive: true, force: true });
    }
  }
}

export function requestLoggingTable(figures: readonly LoggingFigure[]): string {
  const off = figures[0];
  return table(
    ['guarded route', 'requests/s (median)', 'p99 ms (median)', 'server µs CPU/request', 'vs. off'],
    figures.map((f) => [
      f.variant,
      Math.round(f.requestsPerSecond).toLocaleString('en-US'),
      f.p99Ms.toFixed(2),
      f.cpuMicroseconds.toFixed(1),
      `${(f.requestsPerSecond / off.requestsPerSecond).toFixed(2)}x`,
    ]),
  );
}
