import { setTimeout as sleep } from 'node:timers/promises';

import { jest } from '@jest/globals';
import type { DataSource, MigrationInterface, QueryRunner } from 'typeorm';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { loadConfig } from '../config/app-config';
import { buildDataSourceOptions } from './data-source-options';
import { openServiceDataSource } from './database.module';
import { SerializedPglitePool, closeEmbeddedDatabases } from './pglite-pool';

class CreateCounter1700000000000 implements MigrationInterface {
  readonly name = 'CreateCounter1700000000000';

  async up(runner: QueryRunner): Promise<void> {
    await runner.query('CREATE TABLE "orders"."counter" (id int PRIMARY KEY, value int NOT NULL)');
    await runner.query('INSERT INTO "orders"."counter" (id, value) VALUES (1, 0)');
  }

  async down(runner: QueryRunner): Promise<void> {
    await runner.query('DROP TABLE "orders"."counter"');
  }
}

interface CounterRow {
  value: number;
}

const COUNTER_QUERY = 'SELECT value FROM "orders"."counter" WHERE id = 1';

/** Fails fast instead of hanging the suite when a connection is never handed back. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still waiting after ${ms} ms`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

describe(SerializedPglitePool.name, () => {
  let directory: string;
  let dataSource: DataSource;

  beforeAll(async () => {
    directory = createTempDir('pglite');
    const config = loadConfig({ DATA_DIR: directory });
    const options = buildDataSourceOptions(config, {
      service: 'orders',
      entities: [],
      migrations: [CreateCounter1700000000000],
    });
    dataSource = await openServiceDataSource(options);
  }, 60_000);

  afterAll(async () => {
    await dataSource?.destroy();
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  });

  beforeEach(async () => {
    await dataSource.query('UPDATE "orders"."counter" SET value = 0 WHERE id = 1');
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  const counter = async (): Promise<number> => {
    const rows = await dataSource.query<CounterRow[]>(COUNTER_QUERY);
    return rows[0].value;
  };

  /** BEGIN; read the counter; wait; write it plus one; COMMIT. */
  const increment = (pauseMs: number): Promise<void> =>
    dataSource.transaction(async (manager) => {
      const [row] = await manager.query<CounterRow[]>(COUNTER_QUERY);
      await sleep(pauseMs);
      await manager.query('UPDATE "orders"."counter" SET value = $1 WHERE id = 1', [row.value + 1]);
    });

  describe('when opened through openServiceDataSource', () => {
    it('runs the migrations into the service schema', async () => {
      const rows = await dataSource.query<Array<{ name: string }>>(
        'SELECT name FROM "orders"."migrations" ORDER BY id',
      );

      expect(rows.map((row) => row.name)).toEqual(['CreateCounter1700000000000']);
      expect(await counter()).toBe(0);
    });
  });

  describe('with two transactions at once', () => {
    it('runs them one after the other, so no increment is lost', async () => {
      await within(10_000, Promise.all([increment(50), increment(50)]));

      expect(await counter()).toBe(2);
    });

    it('keeps many concurrent read-modify-write transactions apart', async () => {
      await within(20_000, Promise.all(Array.from({ length: 8 }, (_, i) => increment(i % 3))));

      expect(await counter()).toBe(8);
    });
  });

  describe('while a query runner holds the connection', () => {
    it('makes other queries wait until it is released', async () => {
      const runner = dataSource.createQueryRunner();
      await runner.connect();
      await runner.query('SELECT 1');
      let finished = false;
      const waiting = dataSource.query('SELECT 2 AS two').then((rows: unknown) => {
        finished = true;
        return rows;
      });

      await sleep(100);
      expect(finished).toBe(false);

      await runner.release();
      await expect(within(5_000, waiting)).resolves.toEqual([{ two: 2 }]);
    });
  });

  describe('when a transaction fails', () => {
    it('rolls back what it wrote', async () => {
      const failing = dataSource.transaction(async (manager) => {
        await manager.query('UPDATE "orders"."counter" SET value = 100 WHERE id = 1');
        throw new Error('payment declined');
      });

      await expect(within(5_000, failing)).rejects.toThrow('payment declined');
      expect(await within(5_000, counter())).toBe(0);
    });

    it('releases the connection after a failing statement, outside any transaction', async () => {
      // TypeORM logs the failed query, as configured; keep the test output clean.
      jest.spyOn(console, 'log').mockImplementation(() => undefined);
      const failing = dataSource.transaction(async (manager) => {
        await manager.query('UPDATE "orders"."counter" SET value = 100 WHERE id = 1');
        await manager.query('SELECT * FROM "orders"."no_such_table"');
      });

      await expect(within(5_000, failing)).rejects.toThrow(/no_such_table/);
      // A transaction left open would still hold the id its UPDATE was assigned.
      const [open] = await within(
        5_000,
        dataSource.query<Array<{ xid: string | null }>>(
          'SELECT pg_current_xact_id_if_assigned()::text AS "xid"',
        ),
      );
      expect(open.xid).toBeNull();
      await within(5_000, increment(0));
      expect(await counter()).toBe(1);
    });
  });
});
