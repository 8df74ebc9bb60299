#!/usr/bin/env node
// Signed versus unsigned messaging over NATS, and the per-message cost of the envelope
// against the bare node:crypto Ed25519 floor, all in one run. Needs the build (`npm run
// build`) and a NATS server with JetStream on 127.0.0.1 (BENCH_NATS_URL, default
// nats://127.0.0.1:4222). Every loop is bounded in count; nothing leaves this machine.
import { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { randomUUID, sign, verify } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const { connect } = require('@nats-io/transport-node');
const { jetstream, jetstreamManager, AckPolicy } = require('@nats-io/jetstream');
const { SecretFiles, ensureDevelopmentSecrets } = require('../dist/libs/crypto/src/index.js');
const {
  EnvelopeCodec,
  KeyRing,
  ReplayGuard,
  SignatureVerifierPool,
} = require('../dist/libs/messaging/src/index.js');
const { defaultVerifyWorkers } = require('../dist/libs/core/src/index.js');

const NATS_URL = process.env.BENCH_NATS_URL ?? 'nats://127.0.0.1:4222';
const CRYPTO_RUNS = 9;
const NATS_RUNS = 5;
const CRYPTO_ITERATIONS = 2_000;
const REQUESTS = 3_000;
const IN_FLIGHT = 64;
const EVENTS = 3_000;
/** Deliveries a consumer handles at once, as the apps' shared-event consumers do. */
const CONSUMER_CONCURRENCY = 16;
/** Verification workers, as an app would start them (MESSAGE_VERIFY_WORKERS). */
const VERIFY_WORKERS = Number(process.env.BENCH_VERIFY_WORKERS ?? defaultVerifyWorkers());

const payload = {
  orderId: randomUUID(),
  customerId: randomUUID(),
  totalCents: 12_345,
  currency: 'EUR',
};
const actor = { id: payload.customerId, roles: ['customer'], sessionId: randomUUID() };
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

const secrets = mkdtempSync(join(tmpdir(), 'portcullis-bench-messaging-'));
ensureDevelopmentSecrets(secrets, ['auth', 'orders', 'billing']);
const ring = KeyRing.load(new SecretFiles(secrets), ['auth', 'orders', 'billing']);
const quiet = { record: () => undefined };
const pool = new SignatureVerifierPool(VERIFY_WORKERS);
/** A codec like the apps': opened messages are verified by the pool (openAsync). */
const codec = () => new EnvelopeCodec(ring, 60_000, quiet, new ReplayGuard(), Date.now, pool);

/**
 * CPU time of this process in µs: every thread of it, the verification workers included
 * (process.cpuUsage is the process's rusage). Other load on the machine distorts it less than
 * wall time.
 */
function cpuMicros() {
  const { user, system } = process.cpuUsage();
  return user + system;
}

// 1. Crypto per message: bare sign + verify, against seal + open on one thread (the codec's
// own cost) and against seal + openAsync through the worker pool, 250 messages in flight
// (what the pool adds: batching, copies, messages between threads), and against messages
// sealed 64 to a signature with sealBatch and opened one by one (what a receiver of a relay's
// claim pays). The four alternate every 250 messages within a run, and each ratio is the
// median of the runs' ratios.
const envelopes = codec();
const opening = { subject: 'orders.created', kinds: ['event'], redeliverable: true };
const sealOne = () =>
  envelopes.seal('orders', 'event', 'orders.created', payload, {
    correlationId: 'bench',
    actor,
    traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  });
// The floor signs and verifies the very bytes an envelope carries (its JSON, after
// `<kid>.<signature>.`) with the same key, so that the two differ only in what the codec does
// around the crypto.
const { privateKey } = ring.signerFor('orders');
const { publicKey } = ring.trustedKey(ring.signerFor('orders').kid);
const sample = sealOne();
const body = Buffer.from(sample.subarray(sample.indexOf(0x7b)));
const bare = () => verify(null, body, publicKey, sign(null, body, privateKey));
const batchOf64 = () =>
  envelopes.sealBatch(
    'orders',
    Array.from({ length: 64 }, () => ({
      kind: 'event',
      type: 'orders.created',
      payload,
      options: { correlationId: 'bench', actor },
    })),
  );
async function cryptoRun() {
  let floorMicros = 0;
  let fullMicros = 0;
  let pooledMicros = 0;
  let batchedMicros = 0;
  for (let done = 0; done < CRYPTO_ITERATIONS; done += 250) {
    let started = cpuMicros();
    for (let i = 0; i < 250; i += 1) bare();
    floorMicros += cpuMicros() - started;
    started = cpuMicros();
    for (let i = 0; i < 250; i += 1) envelopes.open(sealOne(), opening);
    fullMicros += cpuMicros() - started;
    started = cpuMicros();
    const sealed = Array.from({ length: 250 }, sealOne);
    await Promise.all(sealed.map((wire) => envelopes.openAsync(wire, opening)));
    pooledMicros += cpuMicros() - started;
    // A fresh codec per batch, so that each batch's signature is verified once, not remembered.
    started = cpuMicros();
    for (let i = 0; i < 250; i += 64) {
      const receiver = codec();
      for (const wire of batchOf64()) receiver.open(wire, opening);
    }
    batchedMicros += (cpuMicros() - started) * (250 / 256);
  }
  return [floorMicros, fullMicros, pooledMicros, batchedMicros].map(
    (micros) => micros / CRYPTO_ITERATIONS,
  );
}
await cryptoRun();
const crypto = {
  floor: [],
  full: [],
  ratio: [],
  pooled: [],
  pooledRatio: [],
  batched: [],
  batchedRatio: [],
};
for (let run = 0; run < CRYPTO_RUNS; run += 1) {
  const [floorRun, fullRun, pooledRun, batchedRun] = await cryptoRun();
  crypto.batched.push(batchedRun);
  crypto.batchedRatio.push(batchedRun / floorRun);
  crypto.floor.push(floorRun);
  crypto.full.push(fullRun);
  crypto.ratio.push(fullRun / floorRun);
  crypto.pooled.push(pooledRun);
  crypto.pooledRatio.push(pooledRun / floorRun);
}

// 2. Request/reply over core NATS, 64 in flight: plain JSON against signed envelopes.
const nc = await connect({ servers: NATS_URL, name: 'portcullis-bench' });
async function requestReply(signed) {
  const subject = `bench.rr.${randomUUID()}`;
  const responder = codec();
  const requester = codec();
  const sub = nc.subscribe(subject, {
    callback: async (_error, message) => {
      if (!signed) return message.respond(message.data);
      const request = await responder.openAsync(message.data, {
        subject: 'billing.invoice.void',
        kinds: ['request'],
      });
      message.respond(
        responder.seal(
          'billing',
          'reply',
          'billing.invoice.void',
          { response: { outcome: 'void' } },
          {
            rid: request.requestId,
            correlationId: request.correlationId,
          },
        ),
      );
    },
  });
  const voidRequest = { ...payload };
  let sent = 0;
  const started = performance.now();
  try {
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async () => {
        while (sent < REQUESTS) {
          sent += 1;
          if (!signed) {
            await nc.request(subject, Buffer.from(JSON.stringify(voidRequest)), { timeout: 5000 });
            continue;
          }
          const rid = randomUUID();
          const wire = requester.seal('orders', 'request', 'billing.invoice.void', voidRequest, {
            rid,
            correlationId: 'bench',
            actor,
          });
          const reply = await nc.request(subject, wire, { timeout: 5000 });
          await requester.openAsync(reply.data, { kinds: ['reply'] });
        }
      }),
    );
  } finally {
    sub.unsubscribe();
  }
  return REQUESTS / ((performance.now() - started) / 1000);
}

// 3. Durable events through JetStream: publish with a message id, consume with acks.
const js = jetstream(nc);
const jsm = await jetstreamManager(nc);
/**
 * `signed`: false (plain JSON), 'each' (one signature per event) or 'batch' (one signature per
 * 64 events, as the outbox relay seals the events of one claim with `sealBatch`).
 */
async function events(signed) {
  const stream = `BENCH_${randomUUID().replace(/-/g, '').slice(0, 12)}`;
  const subject = `bench.${stream}`;
  await jsm.streams.add({ name: stream, subjects: [subject] });
  const publisher = codec();
  const consumer = codec();
  try {
    await jsm.consumers.add(stream, { durable_name: 'c', ack_policy: AckPolicy.Explicit });
    const started = performance.now();
    const publishing = (async () => {
      for (let i = 0; i < EVENTS; i += 64) {
        const ids = Array.from({ length: Math.min(64, EVENTS - i) }, () => randomUUID());
        const options = (id) => ({ id, correlationId: 'bench', actor });
        const sealed =
          signed === 'batch'
            ? publisher.sealBatch(
                'orders',
                ids.map((id) => ({
                  kind: 'event',
                  type: 'orders.created',
                  payload,
                  options: options(id),
                })),
              )
            : ids.map((id) =>
                signed === 'each'
                  ? publisher.seal('orders', 'event', 'orders.created', payload, options(id))
                  : Buffer.from(JSON.stringify({ id, payload })),
              );
        await Promise.all(ids.map((id, n) => js.publish(subject, sealed[n], { msgID: id })));
      }
    })();
    // As the apps consume shared events: up to CONSUMER_CONCURRENCY deliveries at once, each
    // opened (verified by the pool when signed), then acknowledged.
    const handle = async (message) => {
      if (signed) {
        await consumer.openAsync(message.data, {
          subject: 'orders.created',
          kinds: ['event'],
          redeliverable: true,
        });
      } else {
        JSON.parse(Buffer.from(message.data).toString('utf8'));
      }
      message.ack();
    };
    const messages = await (await js.consumers.get(stream, 'c')).consume({ max_messages: 256 });
    const inFlight = new Set();
    let received = 0;
    for await (const message of messages) {
      const handled = handle(message);
      inFlight.add(handled);
      void handled.finally(() => inFlight.delete(handled));
      received += 1;
      if (received === EVENTS) break;
      if (inFlight.size >= CONSUMER_CONCURRENCY) await Promise.race(inFlight);
    }
    await Promise.all([...inFlight, publishing]);
    return EVENTS / ((performance.now() - started) / 1000);
  } finally {
    await jsm.streams.delete(stream);
  }
}

const loadBefore = loadavg()[0];
const rr = { plain: [], signed: [], ratio: [] };
const ev = { plain: [], signed: [], ratio: [] };
const evBatch = { plain: [], signed: [], ratio: [] };
for (let run = 0; run < NATS_RUNS; run += 1) {
  const rrPlain = await requestReply(false);
  const rrSigned = await requestReply(true);
  const evPlain = await events(false);
  const evSigned = await events('each');
  const evBatched = await events('batch');
  rr.plain.push(rrPlain);
  rr.signed.push(rrSigned);
  rr.ratio.push(rrSigned / rrPlain);
  ev.plain.push(evPlain);
  ev.signed.push(evSigned);
  ev.ratio.push(evSigned / evPlain);
  evBatch.plain.push(evPlain);
  evBatch.signed.push(evBatched);
  evBatch.ratio.push(evBatched / evPlain);
}
await nc.close();
await pool.close();
rmSync(secrets, { recursive: true, force: true });

const range = (values) => `${Math.min(...values).toFixed(2)}-${Math.max(...values).toFixed(2)}`;
const fixed = (value, digits) => value.toFixed(digits).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
const rows = [
  [
    'per message: envelope seal + open vs bare Ed25519 sign + verify (µs CPU)',
    fixed(median(crypto.floor), 1),
    fixed(median(crypto.full), 1),
    crypto.ratio,
    'at most 1.10x',
  ],
  [
    `per message: seal + open through ${VERIFY_WORKERS} verification worker(s), all threads (µs CPU)`,
    fixed(median(crypto.floor), 1),
    fixed(median(crypto.pooled), 1),
    crypto.pooledRatio,
    '-',
  ],
  [
    'per message in batches of 64: sealBatch + open, one verification per batch (µs CPU)',
    fixed(median(crypto.floor), 1),
    fixed(median(crypto.batched), 1),
    crypto.batchedRatio,
    '-',
  ],
  [
    'JetStream events, publish + consume + ack, one signature per event (per s)',
    fixed(median(ev.plain), 0),
    fixed(median(ev.signed), 0),
    ev.ratio,
    '-',
  ],
  [
    'JetStream events, one signature per 64 events, as the outbox relay seals (per s)',
    fixed(median(evBatch.plain), 0),
    fixed(median(evBatch.signed), 0),
    evBatch.ratio,
    'at least 0.50x',
  ],
  [
    `request/reply over core NATS, ${IN_FLIGHT} in flight (per s)`,
    fixed(median(rr.plain), 0),
    fixed(median(rr.signed), 0),
    rr.ratio,
    '-',
  ],
];
console.log(
  `Load average (1 min) ${loadBefore.toFixed(2)} before the NATS runs, ${loadavg()[0].toFixed(2)} after; ` +
    `${VERIFY_WORKERS} verification worker(s) (BENCH_VERIFY_WORKERS).\n`,
);
console.log(
  `| measure (medians: crypto ${CRYPTO_RUNS} runs, NATS ${NATS_RUNS} runs) | unsigned or floor | signed | signed vs unsigned (range) | target |`,
);
console.log('| --- | --- | --- | --- | --- |');
for (const [label, plain, signed, ratios, target] of rows) {
  console.log(
    `| ${label} | ${plain} | ${signed} | ${median(ratios).toFixed(2)}x (${range(ratios)}) | ${target} |`,
  );
}
