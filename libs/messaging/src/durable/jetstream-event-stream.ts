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
import type { NatsConnection } from '@nats-io/transport-node';

import {
  DEAD_LETTER_STREAM,
  EVENTS_STREAM,
  deadLetterSubject,
  eventSubject,
} from '@portcullis/contracts';

import {
  DURABLE_EVENT_TTL_MS,
  type EventConsumer,
  type EventStream,
  MAX_DELIVERIES,
  REDELIVERY_BACKOFF_MS,
} from './event-stream';

export { DEAD_LETTER_STREAM, EVENTS_STREAM };

const nanos = (ms: number): number => ms * 1_000_000;
const backoffAfter = (attempt: number): number =>
  REDELIVERY_BACKOFF_MS[attempt - 1] ?? REDELIVERY_BACKOFF_MS[REDELIVERY_BACKOFF_MS.length - 1];

/**
 * Durable events on NATS JetStream: published with the message id as `Nats-Msg-Id` (the
 * stream drops a repeat inside its duplicate window), consumed by durable pull consumers
 * with explicit acks and bounded, growing redelivery; exhausted events go to a dead-letter
 * stream.
 */
export class JetStreamEventStream implements EventStream {
  private readonly logger = new Logger(JetStreamEventStream.name);
  private readonly js: JetStreamClient;
  private ready?: Promise<JetStreamManager>;
  private readonly stops: Array<() => void> = [];

  constructor(private readonly connection: NatsConnection) {
    this.js = jetstream(connection);
  }

  async publish(type: string, messageId: string, data: Uint8Array): Promise<void> {
    await this.streams();
    await this.js.publish(eventSubject(type), data, { msgID: messageId, timeout: 5000 });
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
    // Short pulls and heartbeats, so a consumer resumes within seconds of a NATS restart. Half
    // as many buffered as are handled at once: those in hand and those buffered stay under the
    // server's default limit of 1,000 unacknowledged, and none waits long enough in the buffer
    // for its acknowledgement time to run out.
    const messages = await source.consume({
      max_messages: Math.max(64, Math.floor(concurrency / 2)),
      expires: 5_000,
      idle_heartbeat: 2_000,
    });
    this.stops.push(() => void messages.close());
    void (async () => {
      const inFlight = new Set<Promise<void>>();
      for await (const message of messages) {
        const handled = settle(message, consumer);
        if (concurrency <= 1) {
          await handled;
          continue;
        }
        inFlight.add(handled);
        void handled.finally(() => inFlight.delete(handled));
        if (inFlight.size >= concurrency) await Promise.race(inFlight);
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

/** Hands one delivery to the consumer, then acknowledges, redelivers or ends it. */
async function settle(message: JsMsg, consumer: EventConsumer): Promise<void> {
  const attempt = message.info.deliveryCount;
  const isLastAttempt = attempt >= MAX_DELIVERIES;
  let outcome;
  try {
    outcome = await consumer({ data: message.data, attempt, isLastAttempt });
  } catch {
    outcome = 'retry' as const;
  }
  if (outcome === 'retry' && !isLastAttempt) message.nak(backoffAfter(attempt));
  else if (outcome === 'retry' || outcome === 'reject') message.term(outcome);
  else message.ack();
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
