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
/** The JetStream stream that keeps every event (`evt.>`) until its consumers have it. */
export const EVENTS_STREAM = 'PORTCULLIS_EVENTS';
/** The JetStream stream of events a consumer gave up on (`dlq.>`). */
export const DEAD_LETTER_STREAM = 'PORTCULLIS_DLQ';

/**
 * The part of the JetStream API an app uses, and no more: the account check, looking up and
 * creating (never updating, purging or deleting) the two streams, creating, looking up and
 * pulling from consumers of the events stream, and acknowledging their deliveries. A service
 * that is taken over cannot delete the streams or their messages, shorten their retention,
 * remove another service's consumer, or reach the server and cluster API.
 *
 * Consumer names are not limited: NATS matches whole tokens only, and a consumer's name is one
 * token, so "names beginning with orders" cannot be expressed. A service may therefore pull
 * from another service's consumer; the deliveries it would take are signed events it may
 * read anyway (it subscribes to `evt.>`), but the owner would see them late or not at all.
 */
const JETSTREAM = [
  '$JS.API.INFO',
  ...[EVENTS_STREAM, DEAD_LETTER_STREAM].flatMap((stream) => [
    `$JS.API.STREAM.INFO.${stream}`,
    `$JS.API.STREAM.CREATE.${stream}`,
  ]),
  `$JS.API.CONSUMER.CREATE.${EVENTS_STREAM}.>`,
  `$JS.API.CONSUMER.DURABLE.CREATE.${EVENTS_STREAM}.*`,
  `$JS.API.CONSUMER.INFO.${EVENTS_STREAM}.*`,
  `$JS.API.CONSUMER.MSG.NEXT.${EVENTS_STREAM}.*`,
  `$JS.ACK.${EVENTS_STREAM}.>`,
];

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
