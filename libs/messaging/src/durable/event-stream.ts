/** What a consumer decided about one delivery. */
export type DeliveryOutcome = 'done' | 'retry' | 'reject';

/** One delivery of a durable event to a consumer. */
export interface EventDelivery {
  readonly data: Uint8Array;
  /** 1 for the first delivery, 2 for the first redelivery, and so on. */
  readonly attempt: number;
  /** Whether no further delivery will follow a `retry`. */
  readonly isLastAttempt: boolean;
}

export type EventConsumer = (delivery: EventDelivery) => Promise<DeliveryOutcome>;

/** Redelivery policy shared by both streams: bounded, with growing pauses. */
export const MAX_DELIVERIES = 5;
export const REDELIVERY_BACKOFF_MS = [1_000, 5_000, 15_000, 30_000];

/** How long a durable event stays valid: as long as the stream keeps it. */
export const DURABLE_EVENT_TTL_MS = 7 * 24 * 60 * 60 * 1000;

/**
 * Durable, at-least-once event delivery. `publish` resolves once the stream has the event;
 * `consume` delivers each event of a type once per consumer group (or to every process for
 * broadcast groups), redelivering on `retry` until {@link MAX_DELIVERIES}.
 */
export interface EventStream {
  publish(type: string, messageId: string, data: Uint8Array): Promise<void>;
  /**
   * `shared`: one delivery per group, whatever its number of processes. `broadcast`: `group`
   * is unique to the process, and the subscription ends with it. `concurrency` above 1 lets
   * that many deliveries be in the consumer at once (for consumers that batch them), in no
   * particular order.
   */
  consume(
    type: string,
    group: string,
    consumer: EventConsumer,
    mode: 'shared' | 'broadcast',
    concurrency?: number,
  ): Promise<void>;
  /** Keeps a delivery that exhausted its attempts (or was rejected) for inspection. */
  deadLetter(type: string, data: Uint8Array, reason: string): Promise<void>;
  close(): Promise<void>;
}
