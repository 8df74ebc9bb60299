import { SERVICE_NAMES, type ServiceName, natsInboxPrefix } from '@portcullis/core';

import { MESSAGE_CONTRACTS, type MessageContract, type MessageType } from './message-types';

/**
 * Who connects to NATS: each service on its own, or `platform`, the one process that hosts
 * all three. Each is a NATS user, named by the common name of its client certificate.
 */
export type NatsUser = ServiceName | 'platform';

export const NATS_USERS: readonly NatsUser[] = [...SERVICE_NAMES, 'platform'];

/** What a NATS user may do, as the server enforces it. */
export interface NatsPermissions {
  readonly publish: readonly string[];
  readonly subscribe: readonly string[];
  /** May answer the requests it receives: one publish to each request's reply subject. */
  readonly allowResponses: boolean;
}

/** The JetStream subject of an event: `evt.<type>`, captured by the events stream. */
export function eventSubject(type: string): string {
  return `evt.${type}`;
}

/** The subject an event goes to when its consumer gave up on it: `dlq.<type>`. */
export function deadLetterSubject(type: string): string {
  return `dlq.${type}`;
}

/** Every event, for the processes that read the events stream or hear broadcasts. */
const ALL_EVENTS = eventSubject('>');
/** Dead letters, published by whichever service gave up on an event. */
const DEAD_LETTERS = deadLetterSubject('>');
/**
 * The JetStream API and acknowledgements. Broad: every service creates the streams and its
 * consumers at start-up, so it may also manage or read any stream of the account.
 */
const JETSTREAM = ['$JS.API.>', '$JS.ACK.>'];

/**
 * The subjects a NATS user may publish and subscribe to, derived from the message
 * allow-list: a service publishes the events it owns and the requests it may ask, and
 * subscribes to the requests it answers, to events, and to its own inboxes only. `platform`
 * may do what the three services may, with its own inboxes.
 */
export function natsPermissions(user: NatsUser): NatsPermissions {
  const services: readonly ServiceName[] = user === 'platform' ? SERVICE_NAMES : [user];
  const publish = new Set<string>([DEAD_LETTERS, ...JETSTREAM]);
  const subscribe = new Set<string>([ALL_EVENTS, `${natsInboxPrefix(user)}.>`]);
  let allowResponses = false;

  const contracts = Object.entries(MESSAGE_CONTRACTS) as Array<[MessageType, MessageContract]>;
  for (const [type, contract] of contracts) {
    switch (contract.kind) {
      case 'event':
        if (services.includes(contract.publisher)) publish.add(eventSubject(type));
        break;
      case 'request':
        if (contract.requesters.some((service) => services.includes(service))) publish.add(type);
        if (services.includes(contract.responder)) {
          subscribe.add(type);
          allowResponses = true;
        }
        break;
    }
  }

  return { publish: [...publish].sort(), subscribe: [...subscribe].sort(), allowResponses };
}
