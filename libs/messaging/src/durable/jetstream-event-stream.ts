import { Logger } from '@nestjs/common';
import {
  AckPolicy,
  DeliverPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
  jetstream,
  jetstreamManager,
} from '@nats-io/jetstream';
import { type NatsConnection, headers } from '@nats-io/transport-node';

import {
  DEAD_LETTER_STREAM,
  EVENTS_STREAM,
  deadLetterSubject,
  eventSubject,
} from '@portcullis/contracts';

import {
  DURABLE_EVENT_TTL_MS,
  type DeliveryOutcome,
  type EventConsumer,
  type EventStream,
  MAX_DELIVERIES,
  REDELIVERY_BACKOFF_MS,
} from './event-stream';
import {
  FRAME_HEADER,
  MAX_FRAME_BYTES,
  encodeFrame,
  frameMessageId,
  frameRuns,
  readFrame,
} from './event-frames';

export { DEAD_LETTER_STREAM, EVENTS_STREAM };

const nanos = (ms: number): number => ms * 1_000_000;
const backoffAfter = (attempt: number): number =>
  REDELIVERY_BACKOFF_MS[attempt - 1] ?? REDELIVERY_BACKOFF_MS[REDELIVERY_BACKOFF_MS.length - 1];

/**
 * How often a message in hand is reported as still being worked on (ms). With `backoff` set,
 * the server waits for an acknowledgement only as long as its first step (1 s), whatever
 * `ack_wait` says, and would deliver a message again while its events are still being applied.
 */
const PROGRESS_EVERY_MS = REDELIVERY_BACKOFF_MS[0] / 2;

/**
 * Stream messages of one consumer that came back for another delivery after some of their
 * events were settled, remembered at most (oldest forgotten first).
 */
const PARTLY_SETTLED_MAX = 1_024;

/** An event waiting to be published, and its caller. */
interface Queued {
  readonly id: string;
  readonly data: Uint8Array;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

/**
 * Durable events on NATS JetStream: published with the message id as `Nats-Msg-Id` (the
 * stream drops a repeat inside its duplicate window), consumed by durable pull consumers
 * with explicit acks and bounded, growing redelivery; exhausted events go to a dead-letter
 * stream.
 *
 * Events of one type published in the same turn of the event loop (what a relay sends
 * together) leave as one stream message, a frame (`event-frames.ts`); each still resolves or
 * fails with it. A consumer opens a frame's events one by one, each with its own outcome: the
 * frame is acknowledged once none asks for another try, else delivered again, and then only
 * the events not settled before go to the consumer (when the same process gets it back).
 */
export class JetStreamEventStream implements EventStream {
  private readonly logger = new Logger(JetStreamEventStream.name);
  private readonly js: JetStreamClient;
  private ready?: Promise<JetStreamManager>;
  private readonly stops: Array<() => void> = [];
  private readonly queued = new Map<string, Queued[]>();
  private flushing = false;

  constructor(private readonly connection: NatsConnection) {
    this.js = jetstream(connection);
  }

  async publish(type: string, messageId: string, data: Uint8Array): Promise<void> {
    await this.streams();
    return new Promise((resolve, reject) => {
      const queue = this.queued.get(type);
      const event = { id: messageId, data, resolve, reject };
      if (queue) queue.push(event);
      else this.queued.set(type, [event]);
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Sends what was published in the last turn: runs of one type as frames, in order. */
  private flush(): void {
    this.flushing = false;
    const queued = [...this.queued];
    this.queued.clear();
    for (const [type, events] of queued) {
      for (const run of frameRuns(events, this.maxFrameBytes())) void this.send(type, run);
    }
  }

  /**
   * The bytes of events a frame may carry: {@link MAX_FRAME_BYTES}, or half of what the server
   * accepts in one message if it was configured lower.
   */
  private maxFrameBytes(): number {
    const limit = this.connection.info?.max_payload;
    return limit ? Math.min(MAX_FRAME_BYTES, Math.floor(limit / 2)) : MAX_FRAME_BYTES;
  }

  private async send(type: string, run: readonly Queued[]): Promise<void> {
    try {
      if (run.length === 1) {
        await this.js.publish(eventSubject(type), run[0].data, { msgID: run[0].id, timeout: 5000 });
      } else {
        const frame = headers();
        frame.set(FRAME_HEADER, String(run.length));
        await this.js.publish(eventSubject(type), encodeFrame(run.map((event) => event.data)), {
          msgID: frameMessageId(run.map((event) => event.id)),
          headers: frame,
          timeout: 5000,
        });
      }
    } catch (error) {
      for (const event of run) event.reject(error);
      return;
    }
    for (const event of run) event.resolve();
  }

  async consume(
    type: string,
    group: string,
    consumer: EventConsumer,
    mode: 'shared' | 'broadcast',
    concurrency = 1,
  ): Promise<void> {
    const manager = await this.streams();
    const name = `${group}_${type}`.replace(/[^A-Za-z0-9_-]/g, '_');
    const delivery = {
      filter_subject: eventSubject(type),
      ack_policy: AckPolicy.Explicit,
      ack_wait: nanos(30_000),
      max_deliver: MAX_DELIVERIES,
      backoff: REDELIVERY_BACKOFF_MS.map(nanos),
    };
    await manager.consumers.add(
      EVENTS_STREAM,
      mode === 'shared'
        ? { ...delivery, durable_name: name, deliver_policy: DeliverPolicy.All }
        : // This process's own consumer: only events from now on, removed once it is gone.
          {
            ...delivery,
            name,
            deliver_policy: DeliverPolicy.New,
            inactive_threshold: nanos(60_000),
          },
    );
    const source = await this.js.consumers.get(EVENTS_STREAM, name);
    // Short pulls and heartbeats, so a consumer resumes within seconds of a NATS restart. Few
    // messages buffered: a message's acknowledgement time runs while it waits in the buffer,
    // where nothing can report progress on it (see PROGRESS_EVERY_MS), and a frame carries up
    // to MAX_FRAME_EVENTS events.
    const messages = await source.consume({
      max_messages: 8,
      expires: 5_000,
      idle_heartbeat: 2_000,
    });
    this.stops.push(() => void messages.close());
    const partlySettled = new PartlySettled();
    void (async () => {
      const inFlight = new Set<Promise<void>>();
      let events = 0;
      for await (const message of messages) {
        const carried = eventsOf(message);
        const handled = settle(message, carried, consumer, partlySettled, concurrency <= 1);
        if (concurrency <= 1) {
          await handled;
          continue;
        }
        // Concurrency counts events, whatever number of messages carried them.
        events += carried.length;
        inFlight.add(handled);
        void handled.finally(() => {
          inFlight.delete(handled);
          events -= carried.length;
        });
        while (events >= concurrency && inFlight.size > 0) await Promise.race(inFlight);
      }
    })().catch((error: unknown) => {
      this.logger.error({ msg: 'event consumer stopped', type, error: String(error) });
    });
  }

  async deadLetter(type: string, data: Uint8Array, reason: string): Promise<void> {
    await this.streams();
    await this.js.publish(deadLetterSubject(type), data, { timeout: 5000 });
    this.logger.error({ msg: 'event dead-lettered', type, reason });
  }

  close(): Promise<void> {
    for (const stop of this.stops.splice(0)) stop();
    return Promise.resolve();
  }

  /** Creates the streams once per connection; a second instance finds them in place. */
  private streams(): Promise<JetStreamManager> {
    this.ready ??= (async () => {
      const manager = await jetstreamManager(this.connection);
      await ensureStream(
        manager,
        EVENTS_STREAM,
        eventSubject('>'),
        DURABLE_EVENT_TTL_MS,
        this.logger,
      );
      await ensureStream(
        manager,
        DEAD_LETTER_STREAM,
        deadLetterSubject('>'),
        4 * DURABLE_EVENT_TTL_MS,
        this.logger,
      );
      return manager;
    })().catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    });
    return this.ready;
  }
}

/**
 * The events a stream message carries: those of its frame, or the message itself. A malformed
 * frame is handed on as one empty event, which no consumer can open: it is refused (and
 * recorded) as malformed, and none of the bytes around it is taken for an event.
 */
function eventsOf(message: JsMsg): readonly Uint8Array[] {
  let declared: string | undefined;
  try {
    // Headers are decoded when first read, and a malformed one throws.
    declared = message.headers?.get(FRAME_HEADER);
  } catch {
    return [new Uint8Array(0)];
  }
  if (!declared) return [message.data];
  return readFrame(message.data, declared) ?? [new Uint8Array(0)];
}

/**
 * Which events of a frame were settled (done or refused) in a delivery that ended in another
 * try, by the frame's stream sequence: its next delivery to this process skips them. Bounded;
 * a frame forgotten here has all its events delivered again, and the inbox drops the repeats.
 */
class PartlySettled {
  private readonly settled = new Map<number, ReadonlySet<number>>();

  take(sequence: number): ReadonlySet<number> | undefined {
    const settled = this.settled.get(sequence);
    this.settled.delete(sequence);
    return settled;
  }

  keep(sequence: number, settled: ReadonlySet<number>): void {
    if (settled.size === 0) return;
    this.settled.set(sequence, settled);
    if (this.settled.size > PARTLY_SETTLED_MAX) {
      this.settled.delete(this.settled.keys().next().value as number);
    }
  }
}

/**
 * Hands each event one stream message carries to the consumer (all at once, or one after
 * another if `sequential`), then acknowledges the message, delivers it again later (when one
 * asked for another try and tries are left), or ends it. A single event the consumer refused
 * ends its message; a frame is acknowledged once none of its events asks for another try, the
 * refused ones having been dealt with by the consumer. While its events are being applied, the
 * message is reported as in progress, so the server does not deliver it again meanwhile.
 */
async function settle(
  message: JsMsg,
  events: readonly Uint8Array[],
  consumer: EventConsumer,
  partlySettled: PartlySettled,
  sequential: boolean,
): Promise<void> {
  const attempt = message.info.deliveryCount;
  const isLastAttempt = attempt >= MAX_DELIVERIES;
  const settledBefore = attempt > 1 ? partlySettled.take(message.seq) : undefined;
  const deliver = async (data: Uint8Array, i: number): Promise<DeliveryOutcome> => {
    if (settledBefore?.has(i)) return 'done';
    try {
      return await consumer({ data, attempt, isLastAttempt });
    } catch {
      return 'retry';
    }
  };
  const progress = setInterval(() => answer(() => message.working()), PROGRESS_EVERY_MS);
  let outcomes: DeliveryOutcome[];
  try {
    if (sequential) {
      outcomes = [];
      for (const [i, data] of events.entries()) outcomes.push(await deliver(data, i));
    } else {
      outcomes = await Promise.all(events.map(deliver));
    }
  } finally {
    clearInterval(progress);
  }
  const retry = outcomes.includes('retry');
  if (retry && !isLastAttempt) {
    const settled = new Set<number>();
    outcomes.forEach((outcome, i) => outcome !== 'retry' && settled.add(i));
    partlySettled.keep(message.seq, settled);
    answer(() => message.nak(backoffAfter(attempt)));
  } else if (retry) {
    answer(() => message.term('retry'));
  } else if (events.length === 1 && outcomes[0] === 'reject') {
    answer(() => message.term('reject'));
  } else {
    answer(() => message.ack());
  }
}

/**
 * Tells the server about a message. On a connection that has closed (the app is stopping)
 * this throws; the message is then left unacknowledged, and the server delivers it again.
 */
function answer(tell: () => void): void {
  try {
    tell();
  } catch {
    // Delivered again once its acknowledgement time runs out; the inbox drops what was applied.
  }
}

/**
 * Creates a stream that is missing. An existing stream is left as it is: the apps' NATS users
 * may not update streams (that would let one shorten the retention of everyone's events), so
 * a stream whose settings differ from these is reported for an operator to update.
 */
async function ensureStream(
  manager: JetStreamManager,
  name: string,
  subject: string,
  maxAgeMs: number,
  logger: Logger,
): Promise<void> {
  const config = {
    subjects: [subject],
    max_age: nanos(maxAgeMs),
    duplicate_window: nanos(2 * 60_000),
  };
  let existing: StreamConfig;
  try {
    existing = (await manager.streams.info(name)).config;
  } catch (error) {
    const missing =
      error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound;
    if (!missing) throw error;
    await manager.streams.add({ name, ...config });
    return;
  }
  const differs =
    existing.subjects?.join(' ') !== config.subjects.join(' ') ||
    existing.max_age !== config.max_age ||
    existing.duplicate_window !== config.duplicate_window;
  if (differs) {
    logger.warn({
      msg: 'stream settings differ from the expected ones; update the stream as an operator',
      stream: name,
      expected: { subjects: config.subjects, maxAgeMs, duplicateWindowMs: 2 * 60_000 },
    });
  }
}
