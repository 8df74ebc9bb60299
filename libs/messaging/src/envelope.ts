import type { Actor, ServiceName } from '@portcullis/core';

export type MessageKind = 'event' | 'request' | 'reply';

/**
 * The signed part of every message. Field order is fixed by {@link sealEnvelope}, and the
 * signature covers the exact bytes sent, so no re-canonicalisation is needed to verify.
 */
export interface Envelope<P = unknown> {
  readonly v: 1;
  /** Unique message id (UUID v4): the replay-protection key. */
  readonly id: string;
  readonly kind: MessageKind;
  readonly type: string;
  readonly sender: ServiceName;
  /** Issued at and expires at, in milliseconds since the epoch. */
  readonly iat: number;
  readonly exp: number;
  readonly corr: string;
  /** Request id linking a reply to its request. */
  readonly rid?: string;
  /** W3C trace context of the sending unit of work: `00-<trace id>-<span id>-<flags>`. */
  readonly traceparent?: string;
  readonly actor?: Actor;
  readonly payload: P;
}

/** A message whose signature, sender, type, age and payload were all checked. */
export class VerifiedMessage<P = unknown> {
  constructor(
    readonly id: string,
    readonly kind: MessageKind,
    readonly type: string,
    readonly sender: ServiceName,
    readonly issuedAt: number,
    readonly correlationId: string,
    readonly actor: Actor | undefined,
    readonly payload: P,
    /** For requests and replies: the id that pairs them. */
    readonly requestId?: string,
    /** The sender's W3C trace context, when it sent one; its span is this message's parent. */
    readonly traceparent?: string,
  ) {}
}

/** Why a message was refused; recorded as a security event. */
export type RefusalReason =
  | 'malformed'
  | 'unknown_key'
  | 'bad_signature'
  | 'sender_mismatch'
  | 'type_not_allowed'
  | 'subject_mismatch'
  | 'expired'
  | 'not_yet_valid'
  | 'replayed'
  | 'invalid_payload';

export class MessageRefusedError extends Error {
  constructor(
    readonly reason: RefusalReason,
    readonly type?: string,
    readonly sender?: string,
  ) {
    super(`message refused: ${reason}`);
    this.name = 'MessageRefusedError';
  }
}
