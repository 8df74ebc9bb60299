import { Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';

import {
  type EventConsumer,
  type EventStream,
  MAX_DELIVERIES,
  REDELIVERY_BACKOFF_MS,
} from './event-stream';

interface Group {
  readonly name: string;
  readonly consumer: EventConsumer;
}

/**
 * The one-process event stream. `publish` resolves only when every consumer group has handled
 * the event (or it was dead-lettered), so the outbox marks a record published only after its
 * effects are committed: a crash in between leaves the record to be relayed again, and the
 * consumers' inboxes drop the repeat.
 */
export class InProcessEventStream implements EventStream {
  private readonly logger = new Logger(InProcessEventStream.name);
  private readonly groups = new Map<string, Group[]>();
  private readonly deadLetters: Array<{ type: string; reason: string }> = [];

  constructor(private readonly backoffMs: readonly number[] = REDELIVERY_BACKOFF_MS) {}

  async publish(type: string, _messageId: string, data: Uint8Array): Promise<void> {
    const groups = this.groups.get(type) ?? [];
    await Promise.all(groups.map((group) => this.deliver(group, data)));
  }

  /** One process: shared and broadcast delivery are the same. */
  consume(type: string, group: string, consumer: EventConsumer): Promise<void> {
    const list = this.groups.get(type) ?? [];
    if (!list.some((g) => g.name === group)) list.push({ name: group, consumer });
    this.groups.set(type, list);
    return Promise.resolve();
  }

  deadLetter(type: string, _data: Uint8Array, reason: string): Promise<void> {
    this.deadLetters.push({ type, reason });
    if (this.deadLetters.length > 1000) this.deadLetters.shift();
    this.logger.error({ msg: 'event dead-lettered', type, reason });
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.groups.clear();
    return Promise.resolve();
  }

  private async deliver(group: Group, data: Uint8Array): Promise<void> {
    for (let attempt = 1; attempt <= MAX_DELIVERIES; attempt += 1) {
      const isLastAttempt = attempt === MAX_DELIVERIES;
      let outcome;
      try {
        outcome = await group.consumer({ data: Uint8Array.from(data), attempt, isLastAttempt });
      } catch {
        outcome = 'retry' as const;
      }
      if (outcome === 'done' || outcome === 'reject') return;
      if (!isLastAttempt) await sleep(this.backoffMs[attempt - 1] ?? this.backoffMs.at(-1) ?? 0);
    }
  }
}

/** The stream every app of this process shares when no NATS server is configured. */
export const inProcessEventStream = new InProcessEventStream();
