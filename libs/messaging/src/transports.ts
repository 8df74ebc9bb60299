import { Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ClientNats, NatsContext, ServerNats } from '@nestjs/microservices';
import type { NatsConnection } from '@nats-io/transport-node';

import type { SecurityEvents } from '@portcullis/audit';
import { contractOf, eventSubject, isAuditEventType } from '@portcullis/contracts';
import { RequestContext, acceptCorrelationId } from '@portcullis/core';

import { MessageRefusedError } from './envelope';
import type { EnvelopeCodec } from './envelope-codec';
import type { DeliveryOutcome, EventDelivery, EventStream } from './durable/event-stream';
import { inProcessEventStream } from './durable/in-process-event-stream';
import { JetStreamEventStream } from './durable/jetstream-event-stream';
import { INBOX_CAPACITY } from './durable/inbox';
import { InProcessConnection } from './in-process-connection';
import { childTraceparent } from './trace-context';

type ServerNatsOptions = ConstructorParameters<typeof ServerNats>[0];
type NatsMessage = Parameters<ServerNats['handleMessage']>[1];

/**
 * Audit messages a collector may have in hand at once, per type. Each carries up to 500
 * records; those in hand together are appended in one transaction.
 */
const AUDIT_CONCURRENCY = 32;
/**
 * Shared events handled at once, per type. They are applied through the inbox, which groups
 * those in hand into a few statements or transactions; their order does not matter and a redelivery changes
 * nothing. As many as the inbox applies at once (`INBOX_CAPACITY`): with fewer in hand, its
 * transactions stay small and a backlog forms once they slow down under load. Broadcast
 * events (revocations, key rotations) are applied one after another, also those that travel
 * in one frame.
 */
const SHARED_EVENT_CONCURRENCY = INBOX_CAPACITY;

/** What the server needs to take durable events from the stream. */
export interface DurableEvents {
  readonly codec: EnvelopeCodec;
  readonly events: SecurityEvents;
  /** Consumer group of this process: instances of one app share the work. */
  readonly group: string;
}

/** The event stream over a connection: JetStream over NATS, the shared one in process. */
export function eventStreamOver(connection: unknown): EventStream {
  return connection instanceof InProcessConnection
    ? inProcessEventStream
    : new JetStreamEventStream(connection as NatsConnection);
}

/**
 * Nest's NATS server with signed envelopes. Requests arrive over core NATS, each handled in
 * its own request context; a refused one is dropped (the codec has recorded why). Events
 * arrive from the durable event stream: verified, handled, and acknowledged only when the
 * handler succeeded; a handler that keeps failing sends the event to the dead-letter stream.
 */
export class SignedNatsServer extends ServerNats {
  override readonly propagatesEventHandlerErrors = true;
  private readonly durableLogger = new Logger('EventConsumer');
  private readonly unstarted = new Set<string>();
  private closing = false;
  private stream?: EventStream;

  constructor(
    options: ServerNatsOptions,
    private readonly durable: DurableEvents,
  ) {
    super(options);
  }

  override bindEvents(client: NatsConnection): void {
    const stream = eventStreamOver(client);
    this.stream = stream;
    for (const [pattern, handler] of this.messageHandlers) {
      if (!handler.isEventHandler) {
        const extras = handler.extras as { queue?: string } | undefined;
        const queue = extras?.queue ?? this.durable.group;
        // Closing the connection ends these subscriptions.
        const callback = this.getMessageHandler(pattern).bind(this) as (
          error: Error | null,
          message: NatsMessage,
        ) => void;
        client.subscribe(pattern, { queue, callback });
        continue;
      }
      const contract = contractOf(pattern);
      const mode = contract?.kind === 'event' ? contract.delivery : 'shared';
      const group =
        mode === 'broadcast'
          ? `${this.durable.group}-${randomUUID().slice(0, 8)}`
          : this.durable.group;
      // The audit collector appends what arrives together as one batch.
      const concurrency = isAuditEventType(pattern)
        ? AUDIT_CONCURRENCY
        : mode === 'shared'
          ? SHARED_EVENT_CONCURRENCY
          : 1;
      this.startConsumer(stream, pattern, group, mode, concurrency, 0);
    }
  }

  /** Whether every event consumer runs; readiness fails while one is still being started. */
  consumersStarted(): boolean {
    return this.unstarted.size === 0;
  }

  /**
   * Starts one durable consumer, trying again with a growing pause while JetStream refuses
   * (NATS still starting, JetStream not yet enabled): an app must not stay up without them.
   */
  private startConsumer(
    stream: EventStream,
    pattern: string,
    group: string,
    mode: 'shared' | 'broadcast',
    concurrency: number,
    attempt: number,
  ): void {
    this.unstarted.add(pattern);
    stream
      .consume(
        pattern,
        group,
        (delivery) => this.deliver(stream, pattern, delivery),
        mode,
        concurrency,
      )
      .then(
        () => {
          this.unstarted.delete(pattern);
          if (attempt > 0) this.durableLogger.log({ msg: 'event consumer started', pattern });
        },
        (error: unknown) => {
          if (this.closing) return;
          const retryInMs = Math.min(1_000 * 2 ** attempt, 15_000);
          this.durableLogger.error({
            msg: 'event consumer not started',
            pattern,
            retryInMs,
            error: String(error),
          });
          setTimeout(() => {
            if (!this.closing) {
              this.startConsumer(stream, pattern, group, mode, concurrency, attempt + 1);
            }
          }, retryInMs).unref();
        },
      );
  }

  /**
   * A registered pattern is its own route. Nest first tries each incoming pattern as JSON,
   * and our patterns (message types such as `orders.created`) are not JSON, so every message
   * would pay for a thrown and caught `SyntaxError` before falling back to the same string.
   */
  protected override getRouteFromPattern(pattern: string): string {
    return this.messageHandlers.has(pattern) ? pattern : super.getRouteFromPattern(pattern);
  }

  override handleMessage(channel: string, message: NatsMessage): Promise<void> {
    return RequestContext.run({ correlationId: acceptCorrelationId(undefined) }, async () => {
      try {
        await super.handleMessage(channel, message);
      } catch (error) {
        if (error instanceof MessageRefusedError) return;
        throw error;
      }
    });
  }

  override async close(): Promise<void> {
    this.closing = true;
    await this.stream?.close();
    await super.close();
  }

  private deliver(
    stream: EventStream,
    type: string,
    delivery: EventDelivery,
  ): Promise<DeliveryOutcome> {
    const context = {
      correlationId: acceptCorrelationId(undefined),
      redelivery: delivery.attempt > 1,
    };
    return RequestContext.run(context, async () => {
      let message;
      try {
        message = await this.durable.codec.openAsync(delivery.data, {
          subject: type,
          kinds: ['event'],
          redeliverable: true,
        });
      } catch {
        return 'reject';
      }
      RequestContext.adoptMessage(
        message.correlationId,
        message.actor,
        childTraceparent(message.traceparent),
      );
      try {
        await this.handleEvent(
          type,
          { pattern: type, data: message },
          new NatsContext([eventSubject(type), undefined]),
        );
        return 'done';
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        this.durableLogger.warn({
          msg: 'event handler failed',
          type,
          attempt: delivery.attempt,
          error: reason,
        });
        if (!delivery.isLastAttempt) return 'retry';
        this.durable.events.record({
          type: 'message.dead_lettered',
          outcome: 'failed',
          reason: 'handler_failed',
          details: { messageType: type, sender: message.sender, messageId: message.id },
        });
        await stream.deadLetter(type, delivery.data, reason).catch(() => undefined);
        return 'reject';
      }
    });
  }
}

/** The same server over the in-process bus and event stream: identical envelopes. */
export class InProcessServer extends SignedNatsServer {
  override createNatsClient(): Promise<never> {
    return Promise.resolve(new InProcessConnection() as never);
  }
}

/** Nest's NATS client over the in-process bus. */
export class InProcessClient extends ClientNats {
  override createClient(): Promise<never> {
    return Promise.resolve(new InProcessConnection() as never);
  }
}
