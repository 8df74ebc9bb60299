import { Logger } from '@nestjs/common';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';

import type { PayloadOf, ReplyOf, RequestType } from '@portcullis/contracts';
import type { ServiceName } from '@portcullis/core';

import type { EventStream } from './durable/event-stream';
import { eventStreamOver } from './transports';

/** Raised when a request gets no usable answer in time. */
export class MessageRequestError extends Error {
  constructor(
    readonly type: string,
    cause: unknown,
  ) {
    super(`request ${type} failed`, { cause });
    this.name = 'MessageRequestError';
  }
}

/**
 * Sends this service's requests to their one responder, signed as this service with the
 * current correlation id and actor. Events leave through the {@link Outbox} instead.
 */
/** The part of a Nest client proxy that {@link MessageClient} uses. */
export type BusProxy = Pick<ClientProxy, 'send' | 'connect' | 'close' | 'unwrap'>;

export class MessageClient {
  private readonly logger = new Logger(MessageClient.name);
  private stream?: Promise<EventStream>;

  constructor(
    readonly service: ServiceName,
    private readonly proxy: BusProxy,
  ) {}

  async connect(): Promise<void> {
    await this.proxy.connect();
  }

  /** The durable event stream over this client's connection. */
  async eventStream(): Promise<EventStream> {
    this.stream ??= this.connect().then(() => eventStreamOver(this.proxy.unwrap()));
    return this.stream;
  }

  async request<T extends RequestType>(
    type: T,
    payload: PayloadOf<T>,
    timeoutMs = 5000,
  ): Promise<ReplyOf<T>> {
    try {
      return await firstValueFrom(
        this.proxy.send<ReplyOf<T>>(type, payload).pipe(timeout(timeoutMs)),
      );
    } catch (error) {
      this.logger.warn({ msg: 'request failed', type, error: describe(error) });
      throw new MessageRequestError(type, error);
    }
  }

  async close(): Promise<void> {
    await this.proxy.close();
  }
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.name === 'TimeoutError' ? 'timed out' : error.message;
  if (typeof error === 'string') return error;
  return 'unknown error';
}
