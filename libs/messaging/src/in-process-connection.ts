import { setImmediate } from 'node:timers';

type MessageCallback = (error: Error | null, message: InProcessMessage) => void;

interface Subscription {
  readonly subject: string;
  readonly queue?: string;
  readonly callback: MessageCallback;
  closed: boolean;
}

/** The part of a NATS message that Nest's NATS transport reads. */
export interface InProcessMessage {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly reply?: string;
  readonly headers: undefined;
  respond(data: Uint8Array): boolean;
  json<T>(): T;
}

/**
 * A process-local subject bus with NATS semantics: exact subjects, queue groups deliver each
 * message to one member, delivery is asynchronous and bytes are copied, as on a wire.
 */
class InProcessBus {
  private readonly subscriptions = new Map<string, Subscription[]>();
  private readonly rotation = new Map<string, number>();

  subscribe(subscription: Subscription): void {
    const list = this.subscriptions.get(subscription.subject) ?? [];
    list.push(subscription);
    this.subscriptions.set(subscription.subject, list);
  }

  unsubscribe(subscription: Subscription): void {
    subscription.closed = true;
    const list = this.subscriptions.get(subscription.subject)?.filter((s) => s !== subscription);
    if (list?.length) this.subscriptions.set(subscription.subject, list);
    else this.subscriptions.delete(subscription.subject);
  }

  publish(subject: string, data: Uint8Array, reply?: string): void {
    const targets = this.pickTargets(subject);
    for (const target of targets) {
      const message = this.message(subject, Uint8Array.from(data), reply);
      setImmediate(() => {
        if (!target.closed) target.callback(null, message);
      });
    }
  }

  private pickTargets(subject: string): Subscription[] {
    const list = this.subscriptions.get(subject) ?? [];
    const plain = list.filter((s) => !s.queue);
    const groups = new Map<string, Subscription[]>();
    for (const s of list) if (s.queue) groups.set(s.queue, [...(groups.get(s.queue) ?? []), s]);
    for (const [queue, members] of groups) {
      const key = `${subject} ${queue}`;
      const next = (this.rotation.get(key) ?? 0) % members.length;
      this.rotation.set(key, next + 1);
      plain.push(members[next]);
    }
    return plain;
  }

  private message(subject: string, data: Uint8Array, reply?: string): InProcessMessage {
    return {
      subject,
      data,
      reply,
      headers: undefined,
      respond: (response: Uint8Array) => {
        if (!reply) return false;
        this.publish(reply, response);
        return true;
      },
      json: <T>() => JSON.parse(Buffer.from(data).toString('utf8')) as T,
    };
  }
}

const bus = new InProcessBus();

/**
 * A connection to the in-process bus that offers the subset of the NATS connection API used
 * by Nest's NATS client and server, so both run unchanged over it.
 */
export class InProcessConnection {
  private readonly own = new Set<Subscription>();
  private closedResolve!: () => void;
  private readonly closedPromise = new Promise<void>((resolve) => (this.closedResolve = resolve));
  private isClosedFlag = false;

  subscribe(
    subject: string,
    options: { queue?: string; callback: MessageCallback },
  ): { unsubscribe(): void } {
    const subscription: Subscription = {
      subject,
      queue: options.queue,
      callback: options.callback,
      closed: false,
    };
    bus.subscribe(subscription);
    this.own.add(subscription);
    return {
      unsubscribe: () => {
        bus.unsubscribe(subscription);
        this.own.delete(subscription);
      },
    };
  }

  publish(subject: string, data?: Uint8Array | string, options?: { reply?: string }): void {
    if (this.isClosedFlag) throw new Error('connection closed');
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : (data ?? new Uint8Array());
    bus.publish(subject, bytes, options?.reply);
  }

  /** Status updates end when the connection closes; the bus itself never disconnects. */
  status(): AsyncIterable<never> {
    const closed = this.closedPromise;
    return {
      [Symbol.asyncIterator]: () => ({
        next: () => closed.then(() => ({ done: true as const, value: undefined as never })),
      }),
    };
  }

  isClosed(): boolean {
    return this.isClosedFlag;
  }

  closed(): Promise<void> {
    return this.closedPromise;
  }

  async drain(): Promise<void> {
    await this.close();
  }

  close(): Promise<void> {
    for (const subscription of this.own) bus.unsubscribe(subscription);
    this.own.clear();
    this.isClosedFlag = true;
    this.closedResolve();
    return this.closedPromise;
  }
}
