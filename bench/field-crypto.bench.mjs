#!/usr/bin/env node
// Field encryption against the bare node:crypto AES-256-GCM floor, and what it adds to
// POST /orders and to paying an invoice, all in one run. Needs the build (`npm run build`);
// `npm run bench:crypto` builds first. The apps run in this process on an embedded database
// under a temporary directory and listen on 127.0.0.1 only; every loop is bounded in count.
import { Buffer } from 'node:buffer';
import { createCipheriv, createDecipheriv, createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const crypto = require('../dist/libs/crypto/src/index.js');
const core = require('../dist/libs/core/src/index.js');

const RUNS = 11;
const ITERATIONS = 4_000;
const SLICE = 250;
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 150);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const fixed = (value, digits = 1) => value.toFixed(digits);

/**
 * CPU microseconds per call of `floor` and `field`, and their ratio: `RUNS` runs, each
 * alternating the two in slices of `SLICE` calls so that both see the same conditions; the
 * ratio is the median of the runs' ratios. CPU time of this process, not wall time, so other
 * processes on a shared machine count less.
 */
async function microseconds({ floor, field }) {
  const samples = { floor: [], field: [], ratio: [] };
  for (let run = -1; run < RUNS; run += 1) {
    const spent = { floor: 0, field: 0 };
    for (let slice = 0; slice < ITERATIONS / SLICE; slice += 1) {
      for (const [name, work] of [
        ['floor', floor],
        ['field', field],
      ]) {
        const started = process.cpuUsage();
        for (let i = 0; i < SLICE; i += 1) await work();
        const used = process.cpuUsage(started);
        spent[name] += used.user + used.system;
      }
    }
    if (run < 0) continue;
    samples.floor.push(spent.floor / ITERATIONS);
    samples.field.push(spent.field / ITERATIONS);
    samples.ratio.push(spent.field / spent.floor);
  }
  return {
    floor: median(samples.floor),
    field: median(samples.field),
    ratio: median(samples.ratio),
  };
}

function table(header, rows) {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

const work = mkdtempSync(join(tmpdir(), 'portcullis-bench-fields-'));
try {
  process.stdout.write(
    `node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}\n\n`,
  );

  // 1. Per field: bare AES-256-GCM (random IV, encrypt then decrypt) against seal + open.
  crypto.ensureDevelopmentSecrets(join(work, 'secrets'), ['auth', 'orders', 'billing']);
  const secrets = new crypto.SecretFiles(join(work, 'secrets'));
  const keys = await crypto.openKeyEncryptionKeys(secrets);
  const cipher = new crypto.FieldCipher(keys);
  const index = crypto.BlindIndex.fromKeyring(
    secrets.read(crypto.SECRET_NAMES.blindIndexKeys),
    crypto.SECRET_NAMES.blindIndexKeys,
  );
  const key = randomBytes(32);
  const context = `billing.payments.response_body_sealed:${randomUUID()}`;
  const floorOf = (data) => () => {
    const iv = randomBytes(12);
    const encrypt = createCipheriv('aes-256-gcm', key, iv);
    const body = Buffer.concat([encrypt.update(data), encrypt.final()]);
    const tag = encrypt.getAuthTag();
    const decrypt = createDecipheriv('aes-256-gcm', key, iv);
    decrypt.setAuthTag(tag);
    return Buffer.concat([decrypt.update(body), decrypt.final()]);
  };
  const fieldOf = (text) => async () => cipher.openText(await cipher.seal(text, context), context);
  const fields = [
    ['200 B (the reference size)', 'x'.repeat(200)],
    ['email, 24 B', 'ada.lovelace@example.com'],
    ['payment reference, 43 B', `sim_ch_${randomUUID()}`],
    [
      'payment answer, 330 B JSON',
      JSON.stringify({
        id: randomUUID(),
        orderId: randomUUID(),
        customerId: randomUUID(),
        status: 'paid',
        amountCents: 4200,
        currency: 'EUR',
        createdAt: new Date().toISOString(),
        paidAt: new Date().toISOString(),
        billingDetails: { name: 'Ada Lovelace', city: 'London', country: 'GB' },
      }),
    ],
  ];
  const rows = [];
  for (const [label, text] of fields) {
    const figures = await microseconds({
      floor: floorOf(Buffer.from(text)),
      field: fieldOf(text),
    });
    rows.push([label, fixed(figures.floor), fixed(figures.field), `${fixed(figures.ratio, 2)}x`]);
  }
  const hmacKey = randomBytes(32);
  const hmacs = await microseconds({
    floor: () => createHmac('sha256', hmacKey).update('ada.lovelace@example.com').digest(),
    field: () => index.digest('auth.accounts.email', 'ada.lovelace@example.com'),
  });
  rows.push([
    'blind index of an email (HMAC-SHA256)',
    fixed(hmacs.floor),
    fixed(hmacs.field),
    `${fixed(hmacs.ratio, 2)}x`,
  ]);
  // A field sealed by another process: its data key is unwrapped once, then cached.
  const strangers = Array.from({ length: 200 }, () => new crypto.FieldCipher(keys));
  const coldFields = await Promise.all(
    strangers.map((other) => other.seal('x'.repeat(200), context)),
  );
  let cold = 0;
  const coldOpen = await microseconds({
    floor: floorOf(Buffer.alloc(200)),
    field: async () => {
      const reader = new crypto.FieldCipher(keys);
      await reader.openText(coldFields[cold++ % coldFields.length], context);
    },
  });
  rows.push([
    '200 B, open only, data key not cached',
    `${fixed(coldOpen.floor)} (enc+dec)`,
    fixed(coldOpen.field),
    `${fixed(coldOpen.ratio, 2)}x`,
  ]);
  process.stdout.write(
    `Field encryption, CPU microseconds per encrypt + decrypt (median of ${RUNS} runs of ` +
      `${ITERATIONS}, floor and field alternating every ${SLICE}; ratio: median of the runs' ratios)\n\n`,
  );
  process.stdout.write(
    `${table(['field', 'bare AES-256-GCM', 'FieldCipher seal + open', 'ratio'], rows)}\n\n`,
  );

  // 2. Per request: the apps in this process. Sealing and opening run synchronously once the
  // data key is at hand (the promise they return is already settled), so timing each call
  // until it returns measures its work without counting whatever else the event loop runs.
  let spentNs = 0n;
  let operations = 0;
  const timed = (target, name) => {
    const original = target[name];
    target[name] = function (...args) {
      const started = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        spentNs += process.hrtime.bigint() - started;
        operations += 1;
      }
    };
  };
  timed(crypto.FieldCipher.prototype, 'seal');
  timed(crypto.FieldCipher.prototype, 'open');
  timed(crypto.BlindIndex.prototype, 'digest');
  timed(crypto.BlindIndex.prototype, 'candidates');

  const { securedHostModules } = require('../dist/libs/security/src/index.js');
  const { AuthModule } = require('../dist/apps/auth/src/auth.module.js');
  const { OrdersModule } = require('../dist/apps/orders/src/orders.module.js');
  const { BillingModule } = require('../dist/apps/billing/src/billing.module.js');
  const config = core.loadConfig({
    NODE_ENV: 'test',
    DATA_DIR: join(work, 'data'),
    SECRETS_DIR: join(work, 'secrets'),
    LOG_LEVEL: 'error',
    SWAGGER_ENABLED: 'false',
    RATE_LIMIT_PER_IP: '100000000',
    RATE_LIMIT_PER_USER: '100000000',
  });
  const app = await core.createHost(
    {
      name: 'platform',
      services: ['auth', 'orders', 'billing'],
      imports: () => [...securedHostModules('orders'), AuthModule, OrdersModule, BillingModule],
    },
    config,
  );
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  const base = (await app.getUrl()).replace('[::1]', '127.0.0.1');
  const call = async (method, path, body, token, idempotencyKey) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    const response = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body ? JSON.stringify(body) : undefined,
    });
    return { status: response.status, body: await response.json() };
  };
  const credentials = {
    email: `bench-${randomUUID()}@example.com`,
    password: 'bench password 4242',
  };
  await call('POST', '/auth/register', credentials);
  const { accessToken: token } = (await call('POST', '/auth/login', credentials)).body;

  const measure = async (request) => {
    const spentBefore = spentNs;
    const operationsBefore = operations;
    const started = process.hrtime.bigint();
    const result = await request();
    return {
      result,
      totalUs: Number(process.hrtime.bigint() - started) / 1000,
      cryptoUs: Number(spentNs - spentBefore) / 1000,
      operations: operations - operationsBefore,
    };
  };
  const samples = { order: [], pay: [], bare: [] };
  for (let i = 0; i < REQUESTS; i += 1) {
    const order = await measure(() =>
      call('POST', '/orders', { items: [{ sku: 'KEY-001', quantity: 1 }] }, token, randomUUID()),
    );
    if (order.result.status !== 201)
      throw new Error(`POST /orders answered ${order.result.status}`);
    let invoice;
    for (let attempt = 0; attempt < 200 && !invoice; attempt += 1) {
      const found = await call(
        'GET',
        `/billing/invoices?orderId=${order.result.body.id}`,
        null,
        token,
      );
      invoice = found.body[0];
      if (!invoice) await new Promise((resolve) => setTimeout(resolve, 5));
    }
    if (!invoice) throw new Error('no invoice');
    const pay = await measure(() =>
      call(
        'POST',
        `/billing/invoices/${invoice.id}/pay`,
        {
          paymentMethod: { token: 'tok_visa' },
          billingDetails: { name: 'Ada Lovelace', city: 'London', country: 'GB' },
        },
        token,
        randomUUID(),
      ),
    );
    if (pay.result.status !== 200) throw new Error(`pay answered ${pay.result.status}`);
    // The floor in the same conditions: one bare encryption, as cold as the request left it.
    const started = process.hrtime.bigint();
    const bare = createCipheriv('aes-256-gcm', key, randomBytes(12));
    bare.setAAD(Buffer.from(context));
    bare.update(Buffer.from(JSON.stringify(pay.result.body)));
    bare.final();
    bare.getAuthTag();
    const bareUs = Number(process.hrtime.bigint() - started) / 1000;
    if (i >= 10) {
      samples.order.push(order);
      samples.pay.push(pay);
      samples.bare.push(bareUs);
    }
  }
  await app.close();
  await core.closeEmbeddedDatabases();

  const requestRow = (label, list) => {
    const total = median(list.map((s) => s.totalUs));
    const spent = median(list.map((s) => s.cryptoUs));
    return [
      label,
      fixed(total / 1000, 2),
      fixed(spent),
      String(median(list.map((s) => s.operations))),
      `${fixed((spent / total) * 100, 2)} %`,
    ];
  };
  process.stdout.write(
    `Cost added per request: time spent sealing and opening fields during the request, in-process ` +
      `(embedded database, in-process bus; median of ${REQUESTS - 10} requests). In these ` +
      `cold conditions one bare AES-256-GCM encryption of the payment answer, run right after ` +
      `each payment, took ${fixed(median(samples.bare))} us.\n\n`,
  );
  process.stdout.write(
    `${table(
      ['request', 'latency ms', 'field crypto us', 'fields sealed or opened', 'share'],
      [
        requestRow('POST /orders (and its invoice, opened by the event)', samples.order),
        requestRow('POST /billing/invoices/:id/pay with billing details', samples.pay),
      ],
    )}\n`,
  );
} finally {
  rmSync(work, { recursive: true, force: true });
}
process.exit(0);
