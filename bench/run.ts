import { runHttpBenchmark, httpTable } from './http-guard.bench';
import { requestLoggingTable, runRequestLoggingBenchmark } from './request-logging.bench';
import { runTokenCheckBenchmark, tokenCheckTable } from './token-check.bench';

/**
 * `npm run bench`: the token-check benchmark, the HTTP benchmark and the request-logging
 * benchmark, each printed as a Markdown table (`npm run bench -- tokens|http|logging` for one). Only 127.0.0.1 is contacted; every run is bounded in time.
 */
async function main(): Promise<void> {
  const only = process.argv[2];
  const cpus = (await import('node:os')).cpus();
  process.stdout.write(`node ${process.version}, ${cpus.length} x ${cpus[0]?.model ?? 'cpu'}\n\n`);
  if (only === undefined || only === 'tokens') {
    process.stdout.write(`${tokenCheckTable(await runTokenCheckBenchmark())}\n\n`);
  }
  if (only === undefined || only === 'http') {
    process.stdout.write(`${httpTable(await runHttpBenchmark())}\n`);
  }
  if (only === undefined || only === 'logging') {
    process.stdout.write(`\n${requestLoggingTable(await runRequestLoggingBenchmark())}\n`);
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(
      `benchmark failed: ${error instanceof Error ? error.stack : String(error)}\n`,
    );
    process.exit(1);
  },
);
