import { ClientNats, ServerNats } from '@nestjs/microservices';

import { RequestContext, acceptCorrelationId } from '@portcullis/core';

import { MessageRefusedError } from './envelope';
import { InProcessConnection } from './in-process-connection';

type ServerNatsOptions = ConstructorParameters<typeof ServerNats>[0];
type NatsMessage = Parameters<ServerNats['handleMessage']>[1];

/**
 * Nest's NATS server with envelope verification: each message is handled in its own request
 * context, and a refused message is dropped (the codec has already recorded why).
 */
export class SignedNatsServer extends ServerNats {
  constructor(options: ServerNatsOptions) {
    super(options);
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
}

/** The same server over the in-process bus: identical envelopes, no network. */
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
