import { SERVICE_NAMES } from '@portcullis/core';

import { MESSAGE_CONTRACTS, type MessageContract } from './message-types';
import { NATS_USERS, eventSubject, natsPermissions } from './nats-permissions';

const contracts = Object.entries(MESSAGE_CONTRACTS) as Array<[string, MessageContract]>;
const events = contracts.filter(([, contract]) => contract.kind === 'event');
const requests = contracts.filter(([, contract]) => contract.kind === 'request');

describe(natsPermissions.name, () => {
  describe('for each service', () => {
    it.each(events)('lets only the publisher of %s publish it', (type, contract) => {
      for (const service of SERVICE_NAMES) {
        const { publish } = natsPermissions(service);
        const owner = contract.kind === 'event' && contract.publisher === service;
        expect({ service, granted: publish.includes(eventSubject(type)) }).toEqual({
          service,
          granted: owner,
        });
        expect(publish).not.toContain(type);
      }
    });

    it.each(requests)('lets only the requesters of %s ask it', (type, contract) => {
      for (const service of SERVICE_NAMES) {
        const asks = contract.kind === 'request' && contract.requesters.includes(service);
        expect({ service, granted: natsPermissions(service).publish.includes(type) }).toEqual({
          service,
          granted: asks,
        });
      }
    });

    it.each(requests)('lets only the responder of %s receive it', (type, contract) => {
      for (const service of SERVICE_NAMES) {
        const answers = contract.kind === 'request' && contract.responder === service;
        expect({ service, granted: natsPermissions(service).subscribe.includes(type) }).toEqual({
          service,
          granted: answers,
        });
      }
    });

    it('lets a service read its own inboxes and no one else', () => {
      expect(natsPermissions('orders').subscribe).toContain('_INBOX.orders.>');
      for (const user of NATS_USERS) {
        const inboxes = natsPermissions(user).subscribe.filter((s) => s.startsWith('_INBOX'));
        expect(inboxes).toEqual([`_INBOX.${user}.>`]);
      }
    });

    it('lets it answer requests only when it responds to some', () => {
      expect(natsPermissions('auth').allowResponses).toBe(true);
      expect(natsPermissions('billing').allowResponses).toBe(true);
      expect(natsPermissions('orders').allowResponses).toBe(false);
    });

    it('grants no wildcard beyond events, dead letters, its event consumers and its inboxes', () => {
      for (const user of NATS_USERS) {
        const { publish, subscribe } = natsPermissions(user);
        const wildcards = [...publish, ...subscribe].filter((s) => /[*>]/.test(s));
        expect(new Set(wildcards)).toEqual(
          new Set([
            'dlq.>',
            '$JS.API.CONSUMER.CREATE.PORTCULLIS_EVENTS.>',
            '$JS.API.CONSUMER.DURABLE.CREATE.PORTCULLIS_EVENTS.*',
            '$JS.API.CONSUMER.INFO.PORTCULLIS_EVENTS.*',
            '$JS.API.CONSUMER.MSG.NEXT.PORTCULLIS_EVENTS.*',
            '$JS.ACK.PORTCULLIS_EVENTS.>',
            'evt.>',
            `_INBOX.${user}.>`,
          ]),
        );
      }
    });

    it('lets no one update, purge or delete a stream, its messages or a consumer', () => {
      const granted = (subject: string, patterns: readonly string[]) =>
        patterns.some((pattern) => subjectMatches(pattern, subject));
      for (const user of NATS_USERS) {
        const { publish } = natsPermissions(user);
        for (const subject of [
          '$JS.API.STREAM.DELETE.PORTCULLIS_EVENTS',
          '$JS.API.STREAM.PURGE.PORTCULLIS_EVENTS',
          '$JS.API.STREAM.UPDATE.PORTCULLIS_EVENTS',
          '$JS.API.STREAM.MSG.DELETE.PORTCULLIS_EVENTS',
          '$JS.API.STREAM.DELETE.PORTCULLIS_DLQ',
          '$JS.API.STREAM.CREATE.ELSEWHERE',
          '$JS.API.CONSUMER.DELETE.PORTCULLIS_EVENTS.portcullis_billing_orders_created',
          '$JS.API.CONSUMER.PAUSE.PORTCULLIS_EVENTS.portcullis_billing_orders_created',
          '$JS.API.ACCOUNT.PURGE.portcullis',
          '$JS.API.META.LEADER.STEPDOWN',
          '$JS.API.SERVER.REMOVE',
        ]) {
          expect({ user, subject, granted: granted(subject, publish) }).toEqual({
            user,
            subject,
            granted: false,
          });
        }
        expect(granted('$JS.API.STREAM.CREATE.PORTCULLIS_EVENTS', publish)).toBe(true);
        expect(
          granted(
            '$JS.API.CONSUMER.CREATE.PORTCULLIS_EVENTS.portcullis_orders_x.evt.billing.invoice.paid',
            publish,
          ),
        ).toBe(true);
      }
    });

    it('gives orders exactly what the order flow needs', () => {
      expect(natsPermissions('orders')).toEqual({
        publish: [
          '$JS.ACK.PORTCULLIS_EVENTS.>',
          '$JS.API.CONSUMER.CREATE.PORTCULLIS_EVENTS.>',
          '$JS.API.CONSUMER.DURABLE.CREATE.PORTCULLIS_EVENTS.*',
          '$JS.API.CONSUMER.INFO.PORTCULLIS_EVENTS.*',
          '$JS.API.CONSUMER.MSG.NEXT.PORTCULLIS_EVENTS.*',
          '$JS.API.INFO',
          '$JS.API.STREAM.CREATE.PORTCULLIS_DLQ',
          '$JS.API.STREAM.CREATE.PORTCULLIS_EVENTS',
          '$JS.API.STREAM.INFO.PORTCULLIS_DLQ',
          '$JS.API.STREAM.INFO.PORTCULLIS_EVENTS',
          'auth.keys.query',
          'auth.revocations.query',
          'billing.invoice.void',
          'dlq.>',
          'evt.orders.audit.recorded',
          'evt.orders.cancelled',
          'evt.orders.created',
        ],
        subscribe: ['_INBOX.orders.>', 'evt.>'],
        allowResponses: false,
      });
    });
  });

  describe('for platform, the one process of all three', () => {
    it('grants what any service may, with its own inboxes instead of theirs', () => {
      const platform = natsPermissions('platform');
      const ofServices = SERVICE_NAMES.map(natsPermissions);
      const withoutInboxes = (subjects: readonly string[]) =>
        subjects.filter((s) => !s.startsWith('_INBOX.'));

      expect(platform.publish).toEqual([...new Set(ofServices.flatMap((p) => p.publish))].sort());
      expect(withoutInboxes(platform.subscribe)).toEqual(
        [...new Set(ofServices.flatMap((p) => withoutInboxes(p.subscribe)))].sort(),
      );
      expect(platform.subscribe).toContain('_INBOX.platform.>');
      expect(platform.allowResponses).toBe(true);
    });
  });
});

/** NATS subject matching: `*` is one whole token, `>` one or more at the end. */
function subjectMatches(pattern: string, subject: string): boolean {
  const want = pattern.split('.');
  const have = subject.split('.');
  for (let i = 0; i < want.length; i++) {
    if (want[i] === '>') return have.length > i;
    if (i >= have.length || (want[i] !== '*' && want[i] !== have[i])) return false;
  }
  return want.length === have.length;
}
