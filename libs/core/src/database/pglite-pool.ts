import { PGlite } from '@electric-sql/pglite';
import { EventEmitter } from 'node:events';
import { mkdirSync } from 'node:fs';

type QueryCallback = (error: Error | null, result?: unknown) => void;
type Release = (error?: unknown) => void;

/**
 * One embedded database per data directory and process. PGlite is a single PostgreSQL
 * session, so every DataSource in the process shares it through {@link SerializedPglitePool}.
 */
const instances = new Map<string, Promise<PGlite>>();

function openDatabase(dataDir: string): Promise<PGlite> {
  let instance = instances.get(dataDir);
  if (!instance) {
    mkdirSync(dataDir, { recursive: true });
    instance = PGlite.create({ dataDir });
    instances.set(dataDir, instance);
  }
  return instance;
}

/** Closes every embedded database this process opened. */
export async function closeEmbeddedDatabases(): Promise<void> {
  const open = [...instances.values()];
  instances.clear();
  await Promise.all(open.map(async (db) => (await db).close()));
}

/**
 * A `pg.Pool` look-alike over one PGlite session that hands out one connection at a time.
 * A TypeORM transaction holds the connection until it releases it, so two transactions can
 * never interleave their statements on the single embedded session.
 */
export class SerializedPglitePool extends EventEmitter {
  private static queues = new Map<string, Promise<void>>();
  private readonly dataDir: string;

  constructor(options: { dataDir?: string }) {
    super();
    if (!options.dataDir) throw new Error('SerializedPglitePool needs a dataDir');
    this.dataDir = options.dataDir;
  }

  connect(callback: (error: Error | null, client: unknown, release: Release) => void): void {
    const previous = SerializedPglitePool.queues.get(this.dataDir) ?? Promise.resolve();
    let releaseTurn!: () => void;
    const turn = new Promise<void>((resolve) => (releaseTurn = resolve));
    SerializedPglitePool.queues.set(
      this.dataDir,
      previous.then(() => turn),
    );

    void previous
      .then(() => openDatabase(this.dataDir))
      .then(
        (db) => {
          let released = false;
          const release: Release = () => {
            if (released) return;
            released = true;
            releaseTurn();
          };
          callback(null, new PgliteClient(db), release);
        },
        (error: unknown) => {
          releaseTurn();
          callback(error instanceof Error ? error : new Error(String(error)), null, () => {});
        },
      );
  }

  query(sql: string, params: unknown, callback?: QueryCallback): void {
    const done = typeof params === 'function' ? (params as QueryCallback) : callback;
    this.connect((error, client, release) => {
      if (error || !client) return done?.(error ?? new Error('no embedded database'));
      void (client as PgliteClient).query(sql, params, (queryError, result) => {
        release();
        done?.(queryError, result);
      });
    });
  }

  end(callback?: (error?: Error) => void): void {
    callback?.();
  }
}

/** The subset of `pg.Client` that TypeORM's PostgreSQL driver uses: promises and callbacks. */
class PgliteClient extends EventEmitter {
  constructor(private readonly db: PGlite) {
    super();
  }

  query(sql: string, params?: unknown, callback?: QueryCallback): Promise<unknown> {
    const done = typeof params === 'function' ? (params as QueryCallback) : callback;
    const values = Array.isArray(params) ? (params as unknown[]) : [];
    const run =
      values.length > 0
        ? this.db.query(sql, values)
        : this.db.exec(sql).then((results) => results[results.length - 1] ?? { rows: [] });
    const result = run.then((raw) => normalizeResult(sql, raw));
    if (done) {
      result.then(
        (value) => done(null, value),
        (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
      );
    }
    return result;
  }

  release(): void {}
}

function normalizeResult(sql: string, raw: { rows: unknown[]; affectedRows?: number }): unknown {
  const command = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
  return { ...raw, command, rowCount: raw.affectedRows ?? raw.rows.length };
}
