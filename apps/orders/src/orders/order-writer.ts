import type { DataSource } from 'typeorm';

import { RequestContext, type RequestContextState, preparedStatement } from '@portcullis/core';
import { type StoredOutboxRow, outboxInsert, ownedOutboxRowsJson } from '@portcullis/messaging';

import type { Order } from './order.entity';

/**
 * Orders written by one statement at most. The orders placed in one turn of the event loop
 * are written together; more than this many take several statements.
 */
const MAX_ORDERS_PER_STATEMENT = 64;

/** An order waiting for its statement, and the outbox rows that go with it. */
interface Waiting {
  readonly order: Order;
  readonly events: readonly StoredOutboxRow[];
  /** The request that placed it: a statement of its own runs, and logs, in that context. */
  readonly context: RequestContextState | undefined;
  readonly resolve: (written: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Writes placed orders. Each order goes with its lines, its event and its audit record in one
 * statement, atomic without a transaction around it, and the orders placed in the same turn of
 * the event loop share that statement: one round trip and one commit for all of them, where
 * each took its own.
 *
 * The statement writes each order only if its `Idempotency-Key` is free (`ON CONFLICT DO
 * NOTHING`), and the rows of an order it skipped are skipped with it: `write` then resolves to
 * false, and the order that holds the key (committed before, or earlier in the same
 * statement) is there to be read. If a shared statement failed on a value, a constraint or a
 * deadlock, each of its orders is written by a statement of its own, so that a bad order fails
 * alone; a statement that failed for a reason no order can cause (the database unreachable)
 * fails them all at once.
 */
export class OrderWriter {
  private waiting: Waiting[] = [];
  private scheduled = false;

  constructor(private readonly db: DataSource) {}

  /**
   * Resolves once the order and its rows are committed (true), or once the statement skipped
   * it because its `Idempotency-Key` is taken (false); rejects if the database refused it.
   */
  write(order: Order, events: readonly StoredOutboxRow[]): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ order, events, context: RequestContext.current(), resolve, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // One turn of the event loop, so that the orders placed meanwhile join the statement,
      // which belongs to none of their requests.
      RequestContext.outside(() => setImmediate(() => this.flush()));
    });
  }

  private flush(): void {
    this.scheduled = false;
    const waiting = this.waiting;
    this.waiting = [];
    for (let at = 0; at < waiting.length; at += MAX_ORDERS_PER_STATEMENT) {
      const orders = waiting.slice(at, at + MAX_ORDERS_PER_STATEMENT);
      const written = orders.length === 1 ? this.writeAlone(orders[0]) : this.writeTogether(orders);
      // Every order is settled by then; should anything throw all the same, none waits forever
      // (an order already settled ignores this).
      written.catch((error: unknown) => {
        for (const { reject } of orders) reject(error);
      });
    }
  }

  private async writeTogether(orders: Waiting[]): Promise<void> {
    let written: Set<string>;
    try {
      written = await this.place(orders);
    } catch (error) {
      // Nothing of the statement was written. If one of the orders may be to blame, each on
      // its own, one after another (at once, they would take every connection of the pool);
      // if the database failed them all (unreachable, shutting down), each alone would too.
      if (!oneRowMayBeToBlame(error)) {
        for (const waiting of orders) waiting.reject(error);
        return;
      }
      for (const waiting of orders) await this.writeAlone(waiting);
      return;
    }
    for (const waiting of orders) waiting.resolve(written.has(waiting.order.id));
  }

  private writeAlone(waiting: Waiting): Promise<void> {
    const write = async () => {
      try {
        const written = await this.place([waiting]);
        waiting.resolve(written.has(waiting.order.id));
      } catch (error) {
        waiting.reject(error);
      }
    };
    return waiting.context ? RequestContext.run(waiting.context, write) : write();
  }

  /** Runs {@link PLACE_ORDERS} for `orders`; resolves to the ids of those it wrote. */
  private async place(orders: readonly Waiting[]): Promise<Set<string>> {
    const rows = await this.db.query<Array<{ id: string }>>(PLACE_ORDERS, [
      JSON.stringify(orders.map(({ order }) => orderColumns(order))),
      JSON.stringify(orders.flatMap(({ order }) => lineColumns(order))),
      ownedOutboxRowsJson(orders.map(({ order, events }) => ({ owner: order.id, rows: events }))),
    ]);
    return new Set(rows.map((row) => row.id));
  }
}

/**
 * Whether a failed statement may have failed because of one of its rows, so that the others
 * would be written without it: PostgreSQL refused a value (SQLSTATE class 22) or a constraint
 * (23), or the statement lost a deadlock or a serialization conflict (40001, 40P01).
 */
function oneRowMayBeToBlame(error: unknown): boolean {
  const code = (error as { driverError?: { code?: unknown } } | null)?.driverError?.code;
  if (typeof code !== 'string') return false;
  return code.startsWith('22') || code.startsWith('23') || code === '40001' || code === '40P01';
}

/** An order's row of `orders.orders`, as {@link PLACE_ORDERS} reads it. */
function orderColumns(order: Order) {
  return {
    id: order.id,
    customer_id: order.customerId,
    status: order.status,
    total_cents: order.totalCents,
    currency: order.currency,
    idempotency_key: order.idempotencyKey,
    request_hash: order.requestHash,
    created_at: order.createdAt.toISOString(),
    updated_at: order.updatedAt.toISOString(),
  };
}

/** An order's rows of `orders.order_lines`, as {@link PLACE_ORDERS} reads them. */
function lineColumns(order: Order) {
  return order.lines.map((line) => ({
    order_id: order.id,
    line_no: line.lineNo,
    sku: line.sku,
    name: line.name,
    unit_price_cents: line.unitPriceCents,
    quantity: line.quantity,
    line_total_cents: line.lineTotalCents,
  }));
}

/**
 * Orders, each with its lines and outbox rows unless its `Idempotency-Key` is taken (by an
 * order committed before, or by another of the same statement); returns the ids of the orders
 * written. The lines' foreign key is checked at the end of the statement. Prepared once per
 * connection.
 */
const PLACE_ORDERS = preparedStatement(
  `WITH placed AS (
       INSERT INTO orders.orders (id, customer_id, status, total_cents, currency,
                                  idempotency_key, request_hash, created_at, updated_at)
       SELECT o.id, o.customer_id, o.status, o.total_cents, o.currency, o.idempotency_key,
              o.request_hash, o.created_at, o.updated_at
         FROM jsonb_to_recordset($1::jsonb) AS o(
           id uuid, customer_id uuid, status varchar, total_cents bigint, currency char(3),
           idempotency_key varchar, request_hash char(64), created_at timestamptz,
           updated_at timestamptz)
       ON CONFLICT DO NOTHING
       RETURNING id),
     lines AS (
       INSERT INTO orders.order_lines (order_id, line_no, sku, name, unit_price_cents, quantity,
                                       line_total_cents)
       SELECT l.order_id, l.line_no, l.sku, l.name, l.unit_price_cents, l.quantity,
              l.line_total_cents
         FROM jsonb_to_recordset($2::jsonb) AS l(
           order_id uuid, line_no smallint, sku varchar, name varchar,
           unit_price_cents integer, quantity integer, line_total_cents bigint)
        WHERE l.order_id IN (SELECT id FROM placed)),
     events AS (
       ${outboxInsert('orders', 3, 'placed')})
   SELECT id FROM placed`,
);
