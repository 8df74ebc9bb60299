import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';

import { Client } from 'pg';
import { DataSource } from 'typeorm';

import { PreparingClient } from '@portcullis/core';

import { AuditChain } from '../../apps/auth/src/audit-trail/audit-chain';
import { Api } from '../support/api';
import { ADMIN, Deployment } from '../support/deployment';

const COLUMNS = [
  'id',
  'time',
  'service',
  'type',
  'outcome',
  'actor_user_id',
  'actor_roles',
  'actor_session_id',
  'actor_client_ip',
  'resource_type',
  'resource_id',
  'correlation_id',
  'traceparent',
  'reason',
  'details',
  'prev_hash',
  'hash',
];

type Row = Record<string, unknown>;

/**
 * Tampering with the audit trail as a database superuser would: triggers switched off for the
 * session, rows altered, removed or swapped. Each change is caught by `GET /audit/verify` and
 * by `npm run audit:verify`, naming the first broken record, and then undone.
 */
describe('tampering with the audit trail, postgres-nats shape', () => {
  let deployment: Deployment;
  let api: Api;
  let adminToken: string;
  let superuser: Client;

  beforeAll(async () => {
    deployment = await Deployment.start('postgres-nats');
    api = new Api(deployment);
    adminToken = await api.login(ADMIN.email, ADMIN.password);
    const ada = await api.customer('ada');
    for (let n = 0; n < 3; n += 1) {
      const order = await api.post('/orders', {
        token: ada.token,
        body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
      });
      expect(order.status).toBe(201);
    }
    superuser = new Client({ connectionString: deployment.databaseUrl });
    await superuser.connect();
    await api.eventually(async () => {
      const { rows } = await superuser.query<{ n: string }>(
        "SELECT count(*) AS n FROM audit.records WHERE type = 'order.created'",
      );
      return Number(rows[0].n) >= 3 ? true : undefined;
    }, 30_000);
    // Let the trail settle: nothing else is recorded while the suite reads it.
    await new Promise((resolve) => setTimeout(resolve, 2_000));
  }, 120_000);

  afterAll(async () => {
    await superuser?.end();
    await deployment?.stop();
  });

  async function row(sequence: number): Promise<Row> {
    const { rows } = await superuser.query<Row>(
      `SELECT ${COLUMNS.join(', ')} FROM audit.records WHERE sequence = $1`,
      [sequence],
    );
    return rows[0];
  }

  /** Runs SQL with the append-only triggers off, as only a superuser can. */
  async function asTamperer(work: () => Promise<unknown>): Promise<void> {
    await superuser.query('SET session_replication_role = replica');
    try {
      await work();
    } finally {
      await superuser.query('SET session_replication_role = origin');
    }
  }

  function overwrite(sequence: number, values: Row): Promise<unknown> {
    const sets = COLUMNS.map((column, index) => `${column} = $${index + 2}`).join(', ');
    return superuser.query(`UPDATE audit.records SET ${sets} WHERE sequence = $1`, [
      sequence,
      ...COLUMNS.map((column) =>
        column === 'actor_roles' || column === 'details'
          ? values[column] === null
            ? null
            : JSON.stringify(values[column])
          : values[column],
      ),
    ]);
  }

  async function verifyOverHttp(): Promise<any> {
    const response = await api.get('/audit/verify', { token: adminToken });
    expect(response.status).toBe(200);
    return response.body;
  }

  function verifyWithScript(): { status: number | null; result: any } {
    const run = spawnSync(process.execPath, ['dist/scripts/audit-verify.js'], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        DATABASE_URL: deployment.databaseUrl ?? '',
        SECRETS_DIR: deployment.secretsDir,
      },
      encoding: 'utf8',
    });
    const line = run.stdout.trim().split('\n').pop() ?? '';
    return { status: run.status, result: line.startsWith('{') ? JSON.parse(line) : run.stderr };
  }

  async function expectBrokenAt(firstBroken: object): Promise<void> {
    expect(await verifyOverHttp()).toMatchObject({ ok: false, firstBroken });
    const script = verifyWithScript();
    expect(script.status).toBe(1);
    expect(script.result).toMatchObject({ ok: false, firstBroken });
  }

  async function expectIntact(): Promise<void> {
    expect(await verifyOverHttp()).toMatchObject({ ok: true });
    expect(verifyWithScript()).toMatchObject({ status: 0, result: { ok: true } });
  }

  it('starts from an intact chain, as both checks agree', async () => {
    await expectIntact();
  });

  it('refuses UPDATE, DELETE and TRUNCATE on the records to the app connection', async () => {
    const app = new Client({ connectionString: deployment.databaseUrl });
    await app.connect();
    try {
      for (const sql of [
        "UPDATE audit.records SET outcome = 'allowed' WHERE sequence = 1",
        'DELETE FROM audit.records WHERE sequence = 1',
        'TRUNCATE audit.records',
      ]) {
        await expect(app.query(sql)).rejects.toThrow('audit records are append-only');
      }
    } finally {
      await app.end();
    }
    await expectIntact();
  });

  it('names an altered record', async () => {
    const original = await row(5);

    await asTamperer(() =>
      overwrite(5, { ...original, outcome: original.outcome === 'denied' ? 'allowed' : 'denied' }),
    );

    await expectBrokenAt({ sequence: 5, id: original.id, reason: 'hash_mismatch' });
    await asTamperer(() => overwrite(5, original));
    await expectIntact();
  });

  it('names the record after a deleted one', async () => {
    const deleted = await row(6);
    const next = await row(7);

    await asTamperer(() => superuser.query('DELETE FROM audit.records WHERE sequence = 6'));

    await expectBrokenAt({ sequence: 7, id: next.id, reason: 'sequence_gap' });
    await asTamperer(async () => {
      await superuser.query(
        'INSERT INTO audit.records (sequence, id, time, service, type, outcome, correlation_id, prev_hash, hash) VALUES (6, $1, now(), $2, $3, $4, $5, $6, $7)',
        [
          deleted.id,
          deleted.service,
          deleted.type,
          deleted.outcome,
          deleted.correlation_id,
          deleted.prev_hash,
          deleted.hash,
        ],
      );
      await overwrite(6, deleted);
    });
    await expectIntact();
  });

  it('names the first of two records whose contents were swapped', async () => {
    const [seventh, eighth] = [await row(7), await row(8)];

    await asTamperer(async () => {
      await overwrite(7, { ...eighth, id: randomUUID() });
      await overwrite(8, seventh);
      await overwrite(7, eighth);
    });

    await expectBrokenAt({ sequence: 7, id: eighth.id, reason: 'prev_hash_mismatch' });
    await asTamperer(async () => {
      await overwrite(7, { ...seventh, id: randomUUID() });
      await overwrite(8, eighth);
      await overwrite(7, seventh);
    });
    await expectIntact();
  });

  it('appends a record once when two collectors bring it while the head is locked', async () => {
    // Two auth instances, as two data sources; a third session holds the chain's head.
    const open = (): Promise<DataSource> =>
      new DataSource({
        type: 'postgres',
        url: deployment.databaseUrl,
        extra: { Client: PreparingClient },
      }).initialize();
    const [first, second] = [await open(), await open()];
    const holder = new Client({ connectionString: deployment.databaseUrl });
    await holder.connect();
    const record = {
      id: randomUUID(),
      time: new Date().toISOString(),
      service: 'orders' as const,
      type: 'test.concurrent_append',
      outcome: 'allowed' as const,
      correlationId: randomUUID(),
    };
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM audit.chain_head FOR UPDATE');
      const appends = [first, second].map((db) => new AuditChain(db).append([record]));
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.query('COMMIT');

      const appended = await Promise.all(appends);

      expect(appended.map((records) => records.length).sort()).toEqual([0, 1]);
      const { rows } = await superuser.query<{ n: string }>(
        'SELECT count(*) AS n FROM audit.records WHERE id = $1',
        [record.id],
      );
      expect(Number(rows[0].n)).toBe(1);
      await expectIntact();
    } finally {
      await holder.end();
      await first.destroy();
      await second.destroy();
    }
  });
});
