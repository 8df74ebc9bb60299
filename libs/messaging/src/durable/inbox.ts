import { Logger } from '@nestjs/common';
import type { DataSource, EntityManager } from 'typeorm';

import type { AuditRecord, SecurityEvents } from '@portcullis/audit';
import { isAuditEventType } from '@portcullis/contracts';
import {
  RequestContext,
  type RequestContextState,
  type ServiceName,
  preparedStatement,
} from '@portcullis/core';

import type { VerifiedMessage } from '../envelope';
import type { OutboxAuditSink } from './outbox-audit-sink';
import {
  type OutboxRow,
  type StoredOutboxRow,
  auditBatches,
  outboxLease,
  outboxWritten,
  storedOutboxRow,
} from './outbox';

/**
 * Messages applied together, at most (in one statement or one transaction per kind of
 * effect, one kind after another), and batches being applied at once. Under the flow
 * benchmark's load (about 650 events a second), with 16 and 4 a backlog formed: 90 % of
 * invoices were written within 436 ms of their order; with 64 and 8, within 84 ms.
 */
const MAX_BATCH = 64;
const MAX_BATCHES_IN_FLIGHT = 8;

/** Messages the inbox applies at once, at most: what a consumer may usefully have in hand. */
export const INBOX_CAPACITY = MAX_BATCH * MAX_BATCHES_IN_FLIGHT;

/**
 * The effect of several messages of one kind as part of one SQL statement, which the inbox
 * runs with its own parts: recording the messages, applying those not applied before and
 * writing their outbox rows then take one statement, one round trip to the database, atomic
 * without a transaction around it (a transaction takes five: BEGIN, the inbox, the effect,
 * the outbox rows, COMMIT, and holds a connection all along).
 */
export interface InboxStatementEffect<T> {
  /**
   * WITH entries, comma-separated, that apply the items read from parameters `$first` on,
   * the last entry named `effect`, its column `message_id` holding the messages whose effect
   * took place. They must apply only the items whose message id is in `recorded(message_id)`
   * (the messages new to the inbox): nothing else keeps a redelivered message from being
   * applied again. A fixed text, asked for once per effect object (so an effect is one
   * long-lived object), and prepared once per connection: like any text marked with
   * `preparedStatement`, it should only hold statements with one sensible plan whatever the
   * tables hold, such as inserts of given rows.
   */
  clauses(first: number): string;
  /** The values of those parameters, for `items`. */
  parameters(items: ReadonlyArray<InboxStatementItem<T>>): unknown[];
  /**
   * The outbox rows (events, and audit records from `SecurityEvents.draft`) that an item's
   * effect writes if it takes place. Called in the context of the item's message; audit
   * records are counted and logged once they are written.
   */
  rowsOf(item: T): OutboxRow[];
}

export interface InboxStatementItem<T> {
  readonly messageId: string;
  readonly item: T;
}

type Effect =
  | { readonly single: (tx: EntityManager) => Promise<void> }
  | { readonly statement: InboxStatementEffect<unknown>; readonly item: unknown };

interface Waiting {
  readonly message: VerifiedMessage;
  readonly effect: Effect;
  /** The message's own context: its correlation id, actor and trace. */
  readonly context: RequestContextState | undefined;
  readonly resolve: (applied: boolean) => void;
  readonly reject: (error: unknown) => void;
}

/**
 * An outbox row of a statement's message: written if the message is new, and, for a row of
 * the effect (`onEffect`), if its effect took place. Rows of one `pack` share a stored row.
 */
interface CandidateRow extends StoredOutboxRow {
  readonly message_id: string;
  readonly on_effect: boolean;
  readonly pack: number;
  readonly packed: boolean;
  readonly n: number;
}

/** The deliveries a statement or transaction applied, and what follows its commit. */
interface Applied {
  readonly applied: Set<Waiting>;
  readonly committed?: () => void;
}

/** A line of an inbox statement's answer: a message recorded, or an outbox row written. */
interface StatementAnswer {
  message_id: string | null;
  took_effect: boolean | null;
  written: Omit<StoredOutboxRow, 'service' | 'lease'> | null;
}

/**
 * Applies each message at most once: its id is recorded in the service's inbox atomically
 * with its effect. A redelivery, or a captured message replayed a week later, finds the id
 * and changes nothing; a replay is recorded as refused. A message applied is recorded as
 * `message.handled` in the audit trail, atomically with its effect.
 *
 * Messages that arrive together are applied together (up to {@link MAX_BATCH}). Those whose
 * effect is a statement ({@link onceIn}) take one statement per kind: it records their ids,
 * applies the new ones and writes the outbox rows of those, all filtered by what was new in
 * the database itself. The others ({@link once}) take one transaction: one insert records
 * their ids, then each new message's effect runs in its own context, one after another, and
 * the audit and outbox rows of them all are written at commit. If a statement or transaction
 * fails, each of its messages is tried again on its own, so one failing effect never holds
 * back or fails the others.
 */
export class Inbox {
  private readonly logger = new Logger(Inbox.name);
  private readonly queue: Waiting[] = [];
  private inFlight = 0;
  private scheduled = false;

  /**
   * Records the ids of a batch's messages, returning those not recorded before. In id order,
   * so that two batches holding some of the same redelivered messages wait for each other
   * rather than deadlock.
   */
  private readonly record: string;
  /** The statement of each statement effect, built once. */
  private readonly statements = new Map<InboxStatementEffect<unknown>, string>();

  constructor(
    private readonly service: ServiceName,
    private readonly db: DataSource,
    private readonly events: SecurityEvents,
    private readonly audit: OutboxAuditSink,
  ) {
    this.record = `INSERT INTO "${service}".inbox (message_id, type, sender)
       SELECT * FROM unnest($1::uuid[], $2::varchar[], $3::varchar[]) AS m(message_id, type, sender)
        ORDER BY message_id
       ON CONFLICT (message_id) DO NOTHING RETURNING message_id`;
    preparedStatement(this.record);
  }

  /** Runs `effect` in a transaction unless the message was applied before; true if it ran. */
  once(message: VerifiedMessage, effect: (tx: EntityManager) => Promise<void>): Promise<boolean> {
    return this.enqueue(message, { single: effect });
  }

  /**
   * Applies `item` with `effect`, in one statement with the other messages of a batch that use
   * the same effect, unless its message was applied before; true if it was applied now.
   */
  onceIn<T>(message: VerifiedMessage, effect: InboxStatementEffect<T>, item: T): Promise<boolean> {
    return this.enqueue(message, { statement: effect, item });
  }

  private enqueue(message: VerifiedMessage, effect: Effect): Promise<boolean> {
    const context = RequestContext.current();
    if (context) context.service = this.service;
    return new Promise((resolve, reject) => {
      this.queue.push({ message, effect, context, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= MAX_BATCHES_IN_FLIGHT || this.queue.length === 0) {
      return;
    }
    this.scheduled = true;
    // One turn of the event loop, so that the deliveries in hand join the batch.
    setImmediate(() => {
      this.scheduled = false;
      if (this.inFlight >= MAX_BATCHES_IN_FLIGHT || this.queue.length === 0) return;
      const batch = this.queue.splice(0, MAX_BATCH);
      this.inFlight += 1;
      void this.settleParts(byEffect(batch)).finally(() => {
        this.inFlight -= 1;
        this.schedule();
      });
      this.schedule();
    });
  }

  /** One kind of effect after another: a batch holds one pooled connection at a time. */
  private async settleParts(parts: Waiting[][]): Promise<void> {
    for (const part of parts) await this.settle(part);
  }

  /**
   * Applies messages of one kind of effect together; on failure, each on its own. What
   * follows a commit (handing rows to the relay, announcing records) runs outside the retry:
   * a failure there must not send applied messages round again, to be taken for replays.
   */
  private async settle(batch: Waiting[]): Promise<void> {
    let applied: Set<Waiting>;
    let committed: (() => void) | undefined;
    try {
      ({ applied, committed } = await this.apply(batch));
    } catch (error) {
      if (batch.length === 1) {
        batch[0].reject(error);
        return;
      }
      // One after another: at once, they would take every connection of the pool.
      for (const waiting of batch) await this.settle([waiting]);
      return;
    }
    try {
      committed?.();
    } catch (error) {
      this.logger.error({ msg: 'inbox bookkeeping after commit failed', error: String(error) });
    }
    for (const waiting of batch) {
      if (!applied.has(waiting)) this.refuseReplay(waiting);
      waiting.resolve(applied.has(waiting));
    }
  }

  /**
   * Resolves to the deliveries applied now, and what to do once they are committed. A message
   * twice in a batch is applied once.
   */
  private apply(batch: readonly Waiting[]): Promise<Applied> {
    const first = new Map<string, Waiting>();
    for (const waiting of batch) {
      if (!first.has(waiting.message.id)) first.set(waiting.message.id, waiting);
    }
    const candidates = [...first.values()];
    const { effect } = candidates[0];
    return 'statement' in effect
      ? this.applyInStatement(effect.statement, candidates)
      : this.applyInTransaction(candidates);
  }

  private async applyInTransaction(candidates: readonly Waiting[]): Promise<Applied> {
    const applied = await this.db.transaction(async (tx) => {
      const inserted = await tx.query<Array<{ message_id: string }>>(this.record, [
        candidates.map((w) => w.message.id),
        candidates.map((w) => w.message.type),
        candidates.map((w) => w.message.sender),
      ]);
      const fresh = new Set(inserted.map((row) => row.message_id));
      const applied = candidates.filter((waiting) => fresh.has(waiting.message.id));
      for (const waiting of applied) {
        const { effect } = waiting;
        if ('single' in effect) await within(waiting, () => effect.single(tx));
      }
      for (const waiting of applied) {
        if (!isAuditEventType(waiting.message.type)) {
          await within(waiting, () => this.events.recordIn(tx, this.handled(waiting.message)));
        }
      }
      return new Set(applied);
    });
    return { applied };
  }

  /**
   * One statement for messages whose effect is `effect`: it records them, applies the new
   * ones, and writes the outbox rows of those it applied, packing the audit records as the
   * outbox does. The rows written are handed to the relay, and their records announced.
   */
  private async applyInStatement(
    effect: InboxStatementEffect<unknown>,
    candidates: readonly Waiting[],
  ): Promise<Applied> {
    const lease = outboxLease(this.db, this.service);
    const drafted: Array<{ waiting: Waiting; onEffect: boolean; row: OutboxRow }> = [];
    const items: Array<InboxStatementItem<unknown>> = [];
    for (const waiting of candidates) {
      const { message } = waiting;
      const item = (waiting.effect as { item: unknown }).item;
      items.push({ messageId: message.id, item });
      within(waiting, () => {
        for (const row of effect.rowsOf(item)) drafted.push({ waiting, onEffect: true, row });
        if (isAuditEventType(message.type)) return;
        const [row] = this.audit.rowsOf([this.events.draft(this.handled(message))]);
        drafted.push({ waiting, onEffect: false, row });
      });
    }
    const answer = await this.db.query<StatementAnswer[]>(this.statementOf(effect), [
      candidates.map((w) => w.message.id),
      candidates.map((w) => w.message.type),
      candidates.map((w) => w.message.sender),
      JSON.stringify(candidateRows(this.service, drafted, lease)),
      ...effect.parameters(items),
    ]);

    const fresh = new Set<string>();
    const tookEffect = new Set<string>();
    const written: StoredOutboxRow[] = [];
    for (const line of answer) {
      if (line.written) written.push({ service: this.service, ...line.written, lease });
      else if (line.message_id) {
        fresh.add(line.message_id);
        if (line.took_effect) tookEffect.add(line.message_id);
      }
    }
    const committed = (): void => {
      if (written.length > 0) outboxWritten(this.db, written);
      this.events.announce(
        drafted
          .filter(({ waiting: { message }, onEffect, row }) => {
            const kept = fresh.has(message.id) && (!onEffect || tookEffect.has(message.id));
            return kept && isAuditEventType(row.type);
          })
          .map(({ row }) => row.payload as AuditRecord),
      );
    };
    return {
      applied: new Set(candidates.filter((waiting) => fresh.has(waiting.message.id))),
      committed,
    };
  }

  /**
   * The statement for `effect`. The JSON of the candidate outbox rows is parameter 4, and the
   * effect's own parameters follow it. The rows kept are grouped by pack: a pack of audit
   * records is stored as one row holding them in order, under the first one's id and context
   * (as `packAuditRows` stores them). A lease of null leaves a row unclaimed, as
   * `outboxInsert` does.
   */
  private statementOf(effect: InboxStatementEffect<unknown>): string {
    let statement = this.statements.get(effect);
    if (statement) return statement;
    const clauses = effect.clauses(5);
    if (!/\brecorded\b/.test(clauses) || !/\beffect\s+AS\b/i.test(clauses)) {
      throw new Error('an inbox statement effect must read `recorded` and end with `effect`');
    }
    const outbox = `"${this.service}".outbox`;
    statement = preparedStatement(
      `WITH recorded AS (${this.record}),
       ${clauses},
       written AS (
         INSERT INTO ${outbox}
                (id, type, payload, actor, correlation_id, traceparent, claimed_until)
         SELECT (array_agg(c.id ORDER BY c.n))[1], (array_agg(c.type))[1],
                CASE WHEN bool_and(c.packed)
                     THEN jsonb_build_object('records', jsonb_agg(c.payload ORDER BY c.n))
                     ELSE (array_agg(c.payload))[1] END,
                (array_agg(c.actor ORDER BY c.n))[1],
                (array_agg(c.correlation_id ORDER BY c.n))[1],
                (array_agg(c.traceparent ORDER BY c.n))[1],
                clock_timestamp() + make_interval(secs => (array_agg(c.lease))[1])
           FROM jsonb_to_recordset($4::jsonb) AS c(
             message_id uuid, on_effect boolean, pack integer, packed boolean, n integer,
             id uuid, type varchar, payload jsonb, actor jsonb, correlation_id varchar,
             traceparent varchar, lease integer)
          WHERE c.message_id IN (SELECT message_id FROM recorded)
            AND (NOT c.on_effect OR c.message_id IN (SELECT message_id FROM effect))
          GROUP BY c.pack
          ORDER BY min(c.n)
         RETURNING id, type, payload, actor, correlation_id, traceparent)
       SELECT r.message_id::text AS message_id,
              r.message_id IN (SELECT message_id FROM effect) AS took_effect,
              NULL::jsonb AS written
         FROM recorded r
       UNION ALL
       SELECT NULL, NULL, to_jsonb(w) FROM written w`,
    );
    this.statements.set(effect, statement);
    return statement;
  }

  private handled(message: VerifiedMessage) {
    return {
      type: 'message.handled' as const,
      outcome: 'allowed' as const,
      service: this.service,
      details: { messageType: message.type, sender: message.sender, messageId: message.id },
    };
  }

  /**
   * Records a message found in the inbox as a refused replay. Not when the stream delivered it
   * again (a frame retried for another of its events, an acknowledgement lost): that repeat is
   * the stream's, not a sender's, and a replayed message was recorded at its first delivery.
   */
  private refuseReplay(waiting: Waiting): void {
    if (waiting.context?.redelivery) return;
    const { message } = waiting;
    within(waiting, () =>
      this.events.record({
        type: 'message.refused',
        outcome: 'denied',
        service: this.service,
        reason: 'replayed',
        details: { messageType: message.type, sender: message.sender, messageId: message.id },
      }),
    );
  }
}

/** A batch's deliveries by kind of effect: one part per statement effect, one for the rest. */
function byEffect(batch: readonly Waiting[]): Waiting[][] {
  const parts = new Map<unknown, Waiting[]>();
  for (const waiting of batch) {
    const key = 'statement' in waiting.effect ? waiting.effect.statement : undefined;
    const part = parts.get(key) ?? [];
    part.push(waiting);
    parts.set(key, part);
  }
  return [...parts.values()];
}

/**
 * The rows drafted for a statement, numbered in order, with the packs they would be stored
 * in were all of them written: each event alone, the audit records of a type together within
 * the outbox's bounds. A pack keeps within them whichever of its records are written.
 */
function candidateRows(
  service: ServiceName,
  drafted: ReadonlyArray<{ waiting: Waiting; onEffect: boolean; row: OutboxRow }>,
  lease: number | null,
): CandidateRow[] {
  const packOf = new Map<OutboxRow, number>();
  let packs = 0;
  for (const { row } of drafted) if (!isAuditEventType(row.type)) packOf.set(row, packs++);
  const audit = drafted.map(({ row }) => row).filter((row) => isAuditEventType(row.type));
  for (const batch of auditBatches(audit)) {
    const pack = packs++;
    for (const row of batch) packOf.set(row, pack);
  }
  return drafted.map(({ waiting, onEffect, row }, n) => ({
    ...storedOutboxRow(service, row, lease),
    message_id: waiting.message.id,
    on_effect: onEffect,
    pack: packOf.get(row) as number,
    packed: isAuditEventType(row.type),
    n,
  }));
}

/** Runs `work` in the context of the delivery that brought the message. */
function within<T>(waiting: Waiting, work: () => T): T {
  return waiting.context ? RequestContext.run(waiting.context, work) : work();
}
