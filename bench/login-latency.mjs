#!/usr/bin/env node
// Login latency at 20 concurrent logins against the one-process shape on embedded defaults.
// Starts its own deployment from the build output (run `npm run build` first), registers
// one account, then keeps 20 logins in flight until N have completed. Prints p50/p99 and
// throughput. Traffic goes to 127.0.0.1 only; the run is bounded in count and time.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const CONCURRENCY = Number(process.env.CONCURRENCY ?? 20);
const TOTAL = Number(process.env.LOGINS ?? 400);
const PORT = Number(process.env.BENCH_PORT ?? 3410);
const base = `http://127.0.0.1:${PORT}`;
const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-login-'));
const env = {
  ...process.env,
  PORT: String(PORT),
  DATA_DIR: join(work, 'data'),
  SECRETS_DIR: join(work, 'secrets'),
  LOG_LEVEL: 'error',
  // Raised through configuration, never in code: the limits would otherwise throttle the run.
  LOGIN_IP_FREE_FAILURES: '100000',
  RATE_LIMIT_PER_IP: '1000000',
  RATE_LIMIT_PER_USER: '1000000',
};
execFileSync(process.execPath, ['dist/scripts/secrets-init.js'], { env, stdio: 'ignore' });
const app = spawn(process.execPath, ['dist/apps/platform/src/main.js'], { env, stdio: 'ignore' });

try {
  await waitForHealth();
  const credentials = { email: 'bench@example.com', password: 'violet tapir 9 ledger' };
  await post('/auth/register', credentials);
  for (let i = 0; i < 20; i += 1) await post('/auth/login', credentials); // warm-up

  const latencies = [];
  let started = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (started < TOTAL) {
        started += 1;
        const begin = performance.now();
        const status = await post('/auth/login', credentials);
        if (status !== 200) throw new Error(`login answered ${status}`);
        latencies.push(performance.now() - begin);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const pick = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  console.log(`logins: ${latencies.length} at concurrency ${CONCURRENCY}`);
  console.log(`| p50 ms | p99 ms | logins/s |\n|---|---|---|`);
  console.log(
    `| ${pick(0.5).toFixed(1)} | ${pick(0.99).toFixed(1)} | ${(latencies.length / seconds).toFixed(0)} |`,
  );
} finally {
  app.kill('SIGTERM');
  await new Promise((r) => app.once('exit', r));
  rmSync(work, { recursive: true, force: true });
}

async function post(path, body) {
  const response = await fetch(base + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

async function waitForHealth() {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`${base}/health`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error('the app did not become healthy');
}
