import type {
  ConsumerDeserializer,
  ConsumerSerializer,
  IncomingEvent,
  IncomingRequest,
  IncomingResponse,
  OutgoingResponse,
  ProducerDeserializer,
  ProducerSerializer,
  ReadPacket,
} from '@nestjs/microservices';

import { contractOf } from '@portcullis/contracts';
import { RequestContext, type ServiceName, acceptCorrelationId } from '@portcullis/core';

import { MessageRefusedError } from './envelope';
import type { EnvelopeCodec } from './envelope-codec';
import { childTraceparent, sendableTraceparent } from './trace-context';

interface WireMessage {
  readonly data: Uint8Array;
  readonly subject?: string;
}

interface WireRecord {
  data: Uint8Array;
  headers: undefined;
}

/**
 * The sending side of one service: signs requests and events as that service with the
 * caller's correlation id and verified actor, and verifies the signed replies.
 */
export class ProducerEnvelopeSerializer implements ProducerSerializer, ProducerDeserializer {
  constructor(
    private readonly codec: EnvelopeCodec,
    private readonly service: ServiceName,
  ) {}

  serialize(packet: ReadPacket & { id?: string }): WireRecord {
    const context = RequestContext.current();
    const kind = packet.id === undefined ? 'event' : 'request';
    const data = this.codec.seal(this.service, kind, String(packet.pattern), packet.data, {
      rid: packet.id,
      correlationId: context?.correlationId ?? acceptCorrelationId(undefined),
      actor: context?.actor,
      traceparent: sendableTraceparent(context?.traceparent),
    });
    return { data, headers: undefined };
  }

  /** Never rejects: a refused reply becomes an error for the waiting caller. */
  async deserialize(message: WireMessage): Promise<IncomingResponse> {
    try {
      const reply = await this.codec.openAsync(message.data, { kinds: ['reply'] });
      const body = reply.payload as Omit<IncomingResponse, 'id'>;
      return {
        id: reply.requestId ?? '',
        response: body.response,
        err: body.err,
        isDisposed: body.isDisposed,
      };
    } catch (error) {
      const reason = error instanceof MessageRefusedError ? error.reason : 'malformed';
      return { id: '', err: `reply refused: ${reason}`, isDisposed: true } as IncomingResponse;
    }
  }
}

/**
 * The receiving side of a process: verifies every incoming request and event, and signs each
 * reply as the service that owns the request type.
 */
export class ConsumerEnvelopeSerializer implements ConsumerSerializer, ConsumerDeserializer {
  /** Request type of each open request, by request id, to sign its replies. */
  private readonly openRequests = new Map<
    string,
    { type: string; correlationId: string; traceparent?: string }
  >();

  constructor(
    private readonly codec: EnvelopeCodec,
    private readonly hosted: readonly ServiceName[],
  ) {}

  async deserialize(message: WireMessage): Promise<IncomingRequest | IncomingEvent> {
    const verified = await this.codec.openAsync(message.data, {
      subject: message.subject,
      kinds: ['request'],
    });
    // The handler works in a span of its own under the requester's trace; its reply names it.
    const traceparent = childTraceparent(verified.traceparent);
    RequestContext.adoptMessage(verified.correlationId, verified.actor, traceparent);
    const rid = verified.requestId;
    if (!rid) throw new MessageRefusedError('malformed', verified.type, verified.sender);
    this.openRequests.set(rid, {
      type: verified.type,
      correlationId: verified.correlationId,
      traceparent,
    });
    return { id: rid, pattern: verified.type, data: verified };
  }

  serialize(packet: OutgoingResponse): WireRecord {
    const open = this.openRequests.get(packet.id);
    const contract = open && contractOf(open.type);
    if (
      !open ||
      !contract ||
      contract.kind !== 'request' ||
      !this.hosted.includes(contract.responder)
    ) {
      throw new Error('reply to an unknown request');
    }
    if (packet.isDisposed) this.openRequests.delete(packet.id);
    const data = this.codec.seal(
      contract.responder,
      'reply',
      open.type,
      {
        response: packet.response as unknown,
        err: packet.err as unknown,
        isDisposed: packet.isDisposed,
      },
      { rid: packet.id, correlationId: open.correlationId, traceparent: open.traceparent },
    );
    return { data, headers: undefined };
  }
}
