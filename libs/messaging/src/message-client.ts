import { Logger } from '@nestjs/common';
import type { ClientProxy } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, timeout } from 'rxjs';

import type { EventType, PayloadOf, ReplyOf, RequestType } from '@portcullis/contracts';
import type { ServiceName } from '@portcullis/core';

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
 * Sends this service's messages: events to whoever listens, requests to their one responder.
 * Every message is signed as this service and carries the current correlation id and actor.
 */
/** The part of a Nest client proxy that {@link MessageClient} uses. */
export type BusProxy = Pick<ClientProxy, 'emit' | 'send' | 'connect' | 'close'>;

export class MessageClient {
  private readonly logger = new Logger(MessageClient.name);

  constructor(
    readonly service: ServiceName,
    private readonly proxy: BusProxy,
  ) {}

  async connect(): Promise<void> {
    await this.proxy.connect();
  }

  async publish<T extends EventType>(type: T, payload: PayloadOf<T>): Promise<void> {
    await lastValueFrom(this.proxy.emit(type, payload), { defaultValue: undefined });
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
