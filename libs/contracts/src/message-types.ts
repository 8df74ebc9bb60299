import type { ServiceName } from '@portcullis/core';

import { AuditRecordPayload, AuditRecordedEvent } from './audit-payloads';
import {
  InvoicePaidEvent,
  OrderCancelledEvent,
  OrderCreatedEvent,
  RevocationsQuery,
  RevocationsReply,
  SessionsRevokedEvent,
  TokenKeysQuery,
  TokenKeysRotatedEvent,
  TokenKeysReply,
  VoidInvoiceReply,
  VoidInvoiceRequest,
} from './payloads';

type PayloadClass = new () => object;

interface EventContract {
  readonly kind: 'event';
  /** The only service that may publish the event: the owner of its name's prefix. */
  readonly publisher: ServiceName;
  /**
   * `shared`: each subscribing app handles it once, whatever its number of instances.
   * `broadcast`: every process applies it (e.g. revocations kept in memory).
   */
  readonly delivery: 'shared' | 'broadcast';
  readonly payload: PayloadClass;
  /**
   * An earlier form of the payload that receivers still accept, for messages published
   * before an upgrade and still in the stream. Senders no longer use it.
   */
  readonly legacyPayload?: PayloadClass;
}

interface RequestContract {
  readonly kind: 'request';
  /** The service that answers: the owner of the request name's prefix. */
  readonly responder: ServiceName;
  /** The services that may ask. */
  readonly requesters: readonly ServiceName[];
  readonly payload: PayloadClass;
  readonly reply: PayloadClass;
}

export type MessageContract = EventContract | RequestContract;

/**
 * Every message type, who may send it and the shape of its payload. This table is the
 * allow-list that receivers enforce: a type not listed here, or sent by a service not named
 * for it, is refused.
 */
export const MESSAGE_CONTRACTS = {
  'orders.created': {
    kind: 'event',
    publisher: 'orders',
    delivery: 'shared',
    payload: OrderCreatedEvent,
  },
  'orders.cancelled': {
    kind: 'event',
    publisher: 'orders',
    delivery: 'shared',
    payload: OrderCancelledEvent,
  },
  'billing.invoice.paid': {
    kind: 'event',
    publisher: 'billing',
    delivery: 'shared',
    payload: InvoicePaidEvent,
  },
  'billing.invoice.void': {
    kind: 'request',
    responder: 'billing',
    requesters: ['orders'],
    payload: VoidInvoiceRequest,
    reply: VoidInvoiceReply,
  },
  'auth.session.revoked': {
    kind: 'event',
    publisher: 'auth',
    delivery: 'broadcast',
    payload: SessionsRevokedEvent,
  },
  'auth.keys.rotated': {
    kind: 'event',
    publisher: 'auth',
    delivery: 'broadcast',
    payload: TokenKeysRotatedEvent,
  },
  'auth.revocations.query': {
    kind: 'request',
    responder: 'auth',
    requesters: ['auth', 'orders', 'billing'],
    payload: RevocationsQuery,
    reply: RevocationsReply,
  },
  'auth.keys.query': {
    kind: 'request',
    responder: 'auth',
    requesters: ['auth', 'orders', 'billing'],
    payload: TokenKeysQuery,
    reply: TokenKeysReply,
  },
  'auth.audit.recorded': {
    kind: 'event',
    publisher: 'auth',
    delivery: 'shared',
    payload: AuditRecordedEvent,
    legacyPayload: AuditRecordPayload,
  },
  'orders.audit.recorded': {
    kind: 'event',
    publisher: 'orders',
    delivery: 'shared',
    payload: AuditRecordedEvent,
    legacyPayload: AuditRecordPayload,
  },
  'billing.audit.recorded': {
    kind: 'event',
    publisher: 'billing',
    delivery: 'shared',
    payload: AuditRecordedEvent,
    legacyPayload: AuditRecordPayload,
  },
} as const satisfies Record<string, MessageContract>;

/** The audit record types, one per publishing service; the collector consumes them all. */
export const AUDIT_EVENT_TYPES = [
  'auth.audit.recorded',
  'orders.audit.recorded',
  'billing.audit.recorded',
] as const satisfies readonly MessageType[];

export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

export function isAuditEventType(type: string): type is AuditEventType {
  return (AUDIT_EVENT_TYPES as readonly string[]).includes(type);
}

export type MessageType = keyof typeof MESSAGE_CONTRACTS;

type ContractOf<T extends MessageType> = (typeof MESSAGE_CONTRACTS)[T];

export type EventType = {
  [T in MessageType]: ContractOf<T>['kind'] extends 'event' ? T : never;
}[MessageType];

export type RequestType = {
  [T in MessageType]: ContractOf<T>['kind'] extends 'request' ? T : never;
}[MessageType];

export type PayloadOf<T extends MessageType> = InstanceType<ContractOf<T>['payload']>;

export type ReplyOf<T extends RequestType> =
  ContractOf<T> extends { reply: infer R }
    ? R extends PayloadClass
      ? InstanceType<R>
      : never
    : never;

export function contractOf(type: string): MessageContract | undefined {
  return Object.prototype.hasOwnProperty.call(MESSAGE_CONTRACTS, type)
    ? (MESSAGE_CONTRACTS as Record<string, MessageContract>)[type]
    : undefined;
}

/** Whether `sender` may send a message of `type` in the role `kind`. */
export function maySend(
  type: string,
  sender: ServiceName,
  kind: 'event' | 'request' | 'reply',
): boolean {
  const contract = contractOf(type);
  if (!contract) return false;
  switch (kind) {
    case 'event':
      return contract.kind === 'event' && contract.publisher === sender;
    case 'request':
      return contract.kind === 'request' && contract.requesters.includes(sender);
    case 'reply':
      return contract.kind === 'request' && contract.responder === sender;
  }
}
