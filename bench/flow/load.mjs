// The order-flow load: customers register and log in, then C clients each place orders one
// after another (POST /orders with a fresh Idempotency-Key, items from GET /products) for a
// warm-up and then a measured phase. One order in N is followed until its invoice is visible
// (GET /billing/invoices?orderId=), by a poller outside the C clients. The read load
// (runReadLoad) has each customer place one order and then only reads invoices.
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

const PASSWORD = 'flow bench password 42 long';
// The gap between polls grows with the wait, so a slow invoice costs few polls and a fast one
// is still seen within a few milliseconds: the lag is known to about a fifth.
const pollGapMs = (waitedMs) => 1 + waitedMs / 5;
const INVOICE_TIMEOUT_MS = 30_000;

/** Registers and logs in `count` customers, `parallel` at a time; returns their tokens. */
export async function signUpCustomers(http, count, parallel = 8) {
  const tokens = [];
  let next = 0;
  const runId = randomUUID().slice(0, 8);
  const worker = async () => {
    while (next < count) {
      const index = next++;
      const email = `flow-${runId}-${index}@example.com`;
      const registered = await http.send('POST', '/auth/register', {
        body: { email, password: PASSWORD },
      });
      if (registered.status !== 201) {
        throw new Error(
          `register answered ${registered.status}: ${JSON.stringify(registered.body)}`,
        );
      }
      const login = await http.send('POST', '/auth/login', { body: { email, password: PASSWORD } });
      if (login.status !== 200) {
        throw new Error(`login answered ${login.status}: ${JSON.stringify(login.body)}`);
      }
      tokens.push(login.body.accessToken);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return tokens;
}

/** The q-quantile of sorted values (nearest rank). */
export function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank];
}

/** The SKUs of the catalogue, which the loads order from. */
async function catalogueSkus(http) {
  const products = await http.send('GET', '/products');
  if (products.status !== 200 || !Array.isArray(products.body) || products.body.length === 0) {
    throw new Error(`GET /products answered ${products.status}`);
  }
  return products.body.map((product) => product.sku);
}

/** p50, p90 and p99 of sorted values. */
function percentiles(sorted) {
  return { p50: quantile(sorted, 0.5), p90: quantile(sorted, 0.9), p99: quantile(sorted, 0.99) };
}

/**
 * Lets `clients` (started with `state.phase` at 'warmup') run through the warm-up and the
 * measured phase, calling `onMeasureStart` / `onMeasureEnd` at its edges, then waits for them
 * to finish. Returns the measured phase's length in milliseconds.
 */
async function runPhases(state, clients, options) {
  await sleep(options.warmupMs);
  await options.onMeasureStart?.();
  const startedAt = performance.now();
  state.phase = 'measure';
  await sleep(options.durationMs);
  state.phase = 'done';
  const elapsedMs = performance.now() - startedAt;
  await options.onMeasureEnd?.();
  await Promise.all(clients);
  return elapsedMs;
}

/**
 * Runs the load. Calls `onMeasureStart` / `onMeasureEnd` at the edges of the measured phase
 * (to read counters) and returns what was measured in it.
 */
export async function runOrderLoad(http, options) {
  const { tokens, concurrency, sampleEvery } = options;
  const skus = await catalogueSkus(http);

  const state = { phase: 'warmup' };
  let sequence = 0;
  const measured = {
    orders: 0,
    postLatencies: [],
    statuses: {},
    invoiceLags: [],
    invoicePolls: 0,
    pollLatencies: [],
    invoiceMissing: 0,
    invoiceErrors: {},
  };
  const pendingSamples = new Set();

  const followInvoice = async (orderId, token, createdAt) => {
    const deadline = createdAt + INVOICE_TIMEOUT_MS;
    for (;;) {
      const asked = performance.now();
      const response = await http.send('GET', `/billing/invoices?orderId=${orderId}`, { token });
      measured.invoicePolls += 1;
      measured.pollLatencies.push(performance.now() - asked);
      if (response.status === 200 && Array.isArray(response.body) && response.body.length > 0) {
        measured.invoiceLags.push(performance.now() - createdAt);
        return;
      }
      if (response.status !== 200) {
        const key = String(response.status);
        measured.invoiceErrors[key] = (measured.invoiceErrors[key] ?? 0) + 1;
      }
      if (performance.now() > deadline) {
        measured.invoiceMissing += 1;
        return;
      }
      await sleep(pollGapMs(performance.now() - createdAt));
    }
  };

  const client = async (index) => {
    while (state.phase !== 'done') {
      const n = sequence++;
      const token = tokens[n % tokens.length];
      const lines = 1 + (n % 3);
      const items = Array.from({ length: lines }, (_, line) => ({
        sku: skus[(n + line) % skus.length],
        quantity: 1 + ((n + index) % 5),
      }));
      const started = performance.now();
      const response = await http.send('POST', '/orders', {
        token,
        body: { items },
        headers: { 'idempotency-key': randomUUID() },
      });
      const finished = performance.now();
      if (state.phase !== 'measure') continue;
      measured.postLatencies.push(finished - started);
      const key = String(response.status);
      measured.statuses[key] = (measured.statuses[key] ?? 0) + 1;
      if (response.status !== 201) continue;
      measured.orders += 1;
      if (measured.orders % sampleEvery === 0) {
        const sample = followInvoice(response.body.id, token, finished);
        pendingSamples.add(sample);
        void sample.finally(() => pendingSamples.delete(sample));
      }
    }
  };

  const clients = Array.from({ length: concurrency }, (_, index) => client(index));
  const elapsedMs = await runPhases(state, clients, options);
  await Promise.all([...pendingSamples]);

  const posts = [...measured.postLatencies].sort((a, b) => a - b);
  const lags = [...measured.invoiceLags].sort((a, b) => a - b);
  const polls = [...measured.pollLatencies].sort((a, b) => a - b);
  return {
    elapsedMs,
    orders: measured.orders,
    ordersPerSecond: measured.orders / (elapsedMs / 1000),
    requests: posts.length,
    post: percentiles(posts),
    invoiceLag: {
      samples: lags.length,
      ...percentiles(lags),
      max: lags.at(-1) ?? NaN,
    },
    invoicePolls: measured.invoicePolls,
    poll: percentiles(polls),
    invoiceMissing: measured.invoiceMissing,
    invoiceErrors: measured.invoiceErrors,
    statuses: measured.statuses,
  };
}

/**
 * The read load: each customer (each token; one anonymous customer for the baseline) places
 * one order and waits for its invoice, then C clients read those invoices
 * (GET /billing/invoices?orderId=, as the owner) one after another for a warm-up and a
 * measured phase. Returns what runOrderLoad returns, a read counting where an order did.
 */
export async function runReadLoad(http, options) {
  const { tokens, concurrency } = options;
  const skus = await catalogueSkus(http);
  const owned = await Promise.all(
    tokens.map(async (token, n) => {
      const placed = await http.send('POST', '/orders', {
        token,
        body: { items: [{ sku: skus[n % skus.length], quantity: 1 }] },
        headers: { 'idempotency-key': randomUUID() },
      });
      if (placed.status !== 201) throw new Error(`POST /orders answered ${placed.status}`);
      const path = `/billing/invoices?orderId=${placed.body.id}`;
      const deadline = performance.now() + INVOICE_TIMEOUT_MS;
      for (;;) {
        const response = await http.send('GET', path, { token });
        if (response.status === 200 && Array.isArray(response.body) && response.body.length > 0) {
          return { token, path };
        }
        if (performance.now() > deadline) throw new Error(`no invoice for ${placed.body.id}`);
        await sleep(20);
      }
    }),
  );

  const state = { phase: 'warmup' };
  let sequence = 0;
  const measured = { reads: 0, latencies: [], statuses: {} };
  const client = async () => {
    while (state.phase !== 'done') {
      const { token, path } = owned[sequence++ % owned.length];
      const started = performance.now();
      const response = await http.send('GET', path, { token });
      const finished = performance.now();
      if (state.phase !== 'measure') continue;
      measured.latencies.push(finished - started);
      const key = String(response.status);
      measured.statuses[key] = (measured.statuses[key] ?? 0) + 1;
      if (response.status === 200) measured.reads += 1;
    }
  };

  const clients = Array.from({ length: concurrency }, () => client());
  const elapsedMs = await runPhases(state, clients, options);

  const latencies = [...measured.latencies].sort((a, b) => a - b);
  return {
    elapsedMs,
    orders: measured.reads,
    ordersPerSecond: measured.reads / (elapsedMs / 1000),
    requests: latencies.length,
    post: percentiles(latencies),
    invoiceLag: { samples: 0, p50: NaN, p90: NaN, p99: NaN, max: NaN },
    invoicePolls: 0,
    poll: { p50: NaN, p90: NaN, p99: NaN },
    invoiceMissing: 0,
    invoiceErrors: {},
    statuses: measured.statuses,
  };
}
