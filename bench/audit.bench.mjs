#!/usr/bin/env node
// The audit trail's two costs: how many records per second the collector appends to the hash
// chain, and what recording adds to a state-changing request. Needs the build (`npm run
// build`); `npm run bench:audit` builds first. On TEST_DATABASE_URL it works in a database of
// its own, created and dropped here; without it, on an embedded database in a temporary
// directory. HTTP goes to 127.0.0.1 only; every loop is bounded in count or time.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { URL } from 'node:url';

const require = createRequire(import.meta.url);
require('reflect-metadata');
const autocannon = require('autocannon');
const { Client } = require('pg');
const common = require('@nestjs/common');
const { APP_INTERCEPTOR, NestFactory } = require('@nestjs/core');
const { FastifyAdapter } = require('@nestjs/platform-fastify');
const core = require('../dist/libs/core/src/index.js');
const audit = require('../dist/libs/audit/src/index.js');
const messaging = require('../dist/libs/messaging/src/index.js');
const { AuditChain } = require('../dist/apps/auth/src/audit-trail/audit-chain.js');
const trail = require('../dist/apps/auth/src/audit-trail/audit-trail.providers.js');

const RECORDS = Number(process.env.BENCH_AUDIT_RECORDS ?? 20_000);
const BATCHES = [100, 1_000];
const HTTP_SECONDS = Number(process.env.BENCH_HTTP_SECONDS ?? 5);
const ROUNDS = 2;
const fixed = (value, digits = 1) => value.toFixed(digits);

function table(header, rows) {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function sampleRecord(n) {
  return {
    id: randomUUID(),
    time: new Date().toISOString(),
    service: 'orders',
    type: 'http.request',
    outcome: n % 10 === 0 ? 'denied' : 'allowed',
    actor: {
      userId: randomUUID(),
      roles: ['customer'],
      sessionId: randomUUID(),
      clientIp: '127.0.0.1',
    },
    resource: { type: 'orders', id: randomUUID() },
    correlationId: randomUUID(),
    details: { method: 'POST', route: '/orders', status: 201 },
  };
}

/** A database of the benchmark's own: PostgreSQL when TEST_DATABASE_URL is set, else PGlite. */
async function openDatabase() {
  const admin = process.env.TEST_DATABASE_URL;
  if (!admin) {
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-audit-bench-'));
    return {
      label: 'embedded PGlite',
      config: core.loadConfig({ DATA_DIR: dataDir }),
      drop: async () => {
        await core.closeEmbeddedDatabases();
        rmSync(dataDir, { recursive: true, force: true });
      },
    };
  }
  const name = `portcullis_audit_bench_${randomBytes(4).toString('hex')}`;
  const client = new Client({ connectionString: admin });
  await client.connect();
  await client.query(`CREATE DATABASE ${name}`);
  await client.end();
  const url = new URL(admin);
  url.pathname = `/${name}`;
  return {
    label: 'PostgreSQL',
    config: core.loadConfig({ DATABASE_URL: url.toString() }),
    drop: async () => {
      const dropper = new Client({ connectionString: admin });
      await dropper.connect();
      await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await dropper.end();
    },
  };
}

async function appendThroughput(config) {
  const db = await core.openServiceDataSource(trail.auditDataSourceOptions(config));
  const chain = new AuditChain(db);
  const rows = [];
  try {
    for (const batch of BATCHES) {
      const records = Array.from({ length: RECORDS }, (_, n) => sampleRecord(n));
      const started = performance.now();
      for (let at = 0; at < records.length; at += batch) {
        await chain.append(records.slice(at, at + batch));
      }
      const seconds = (performance.now() - started) / 1000;
      rows.push([String(batch), String(RECORDS), fixed(RECORDS / seconds, 0)]);
    }
    const started = performance.now();
    const verified = await chain.verify();
    const seconds = (performance.now() - started) / 1000;
    if (!verified.ok) throw new Error('the benchmark chain does not verify');
    rows.push([`verify ${verified.records}`, '', fixed(verified.records / seconds, 0)]);
  } finally {
    await db.destroy();
  }
  return rows;
}

class Things {
  create() {
    return { id: randomUUID(), status: 'created' };
  }
}
common.Controller('things')(Things);
const descriptor = Object.getOwnPropertyDescriptor(Things.prototype, 'create');
common.Post()(Things.prototype, 'create', descriptor);

/** A one-route app, with or without the audit interceptor writing to a real outbox. */
async function routeApp(events) {
  const providers = events
    ? [{ provide: APP_INTERCEPTOR, useValue: new audit.AuditInterceptor(events) }]
    : [];
  class BenchModule {}
  common.Module({ controllers: [Things], providers })(BenchModule);
  const app = await NestFactory.create(BenchModule, new FastifyAdapter({ logger: false }), {
    logger: false,
  });
  await app.listen(0, '127.0.0.1');
  return app;
}

async function load(url) {
  const result = await autocannon({
    url,
    method: 'POST',
    connections: 10,
    duration: HTTP_SECONDS,
    headers: { 'content-type': 'application/json' },
    body: '{}',
  });
  return { rps: result.requests.average, latency: result.latency.average };
}

async function requestCost(config) {
  const db = await core.openServiceDataSource(
    core.buildDataSourceOptions(config, {
      service: 'orders',
      entities: [messaging.OutboxRecord, messaging.InboxRecord],
      migrations: [
        messaging.messagingTablesMigration('orders'),
        messaging.outboxTraceContextMigration('orders'),
      ],
    }),
  );
  const events = new audit.SecurityEvents();
  events.attach(
    'orders',
    new messaging.OutboxAuditSink('orders', db, new messaging.Outbox('orders')),
  );
  const plain = await routeApp(undefined);
  const audited = await routeApp(events);
  const best = { plain: { rps: 0 }, audited: { rps: 0 } };
  try {
    for (let round = 0; round < ROUNDS; round += 1) {
      for (const [name, app] of [
        ['plain', plain],
        ['audited', audited],
      ]) {
        const measured = await load(`${await app.getUrl()}/things`);
        if (measured.rps > best[name].rps) best[name] = measured;
      }
    }
    await events.flush();
    // A row holds one record, or several as { records: [...] }.
    const [{ n }] = await db.query(
      `SELECT coalesce(sum(CASE WHEN payload ? 'records'
                                THEN jsonb_array_length(payload->'records') ELSE 1 END), 0) AS n
         FROM orders.outbox`,
    );
    const perRequest = (rps) => 1e6 / rps;
    return {
      rows: [
        [
          'unaudited',
          fixed(best.plain.rps, 0),
          fixed(best.plain.latency, 2),
          fixed(perRequest(best.plain.rps), 0),
        ],
        [
          'audited',
          fixed(best.audited.rps, 0),
          fixed(best.audited.latency, 2),
          fixed(perRequest(best.audited.rps), 0),
        ],
      ],
      added: perRequest(best.audited.rps) - perRequest(best.plain.rps),
      written: Number(n),
    };
  } finally {
    await plain.close();
    await audited.close();
    await db.destroy();
  }
}

const database = await openDatabase();
try {
  console.log(`Audit trail benchmark on ${database.label}, ${RECORDS} records per batch size\n`);
  console.log(
    table(['batch size', 'records', 'records/s'], await appendThroughput(database.config)),
  );
  const cost = await requestCost(database.config);
  console.log(`\nPOST /things, 10 connections, best of ${ROUNDS} runs of ${HTTP_SECONDS} s\n`);
  console.log(table(['route', 'requests/s', 'mean latency ms', 'µs per request'], cost.rows));
  console.log(
    `\nRecording adds ${fixed(cost.added, 0)} µs per request; ${cost.written} records reached the outbox.`,
  );
} finally {
  await database.drop();
}
