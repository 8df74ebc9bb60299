import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, type Subscription, connect } from '@nats-io/transport-node';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import { TLS_NAMES, ensureDevelopmentCertificates } from '@portcullis/crypto';

import { Api } from '../support/api';
import { Deployment } from '../support/deployment';
import { freePort } from '../support/free-port';
import { type RunningNatsServer, natsTlsEnv, startTlsNatsServer } from '../support/nats-server';
import { createTempDir, removeTempDir } from '../../jest/temp-dir';

/**
 * The bus of the split shape, as the containers run it: a nats-server that speaks only TLS,
 * takes a client's user from its certificate, and holds each user to the subjects the
 * message allow-list gives its service.
 */
// `npm test` runs this file with the split shape only (see test/run-tests.mjs).
describe('transport security of the bus, split shape', () => {
  let deployment: Deployment;
  let api: Api;
  const connections: NatsConnection[] = [];

  beforeAll(async () => {
    deployment = await Deployment.start('split');
    api = new Api(deployment);
  }, 120_000);

  afterAll(async () => {
    await Promise.all(connections.map((connection) => connection.close()));
    await deployment?.stop();
  });

  /** Connects as a NATS user with its certificate; errors the server reports are collected. */
  async function connectAs(user: string): Promise<{ nats: NatsConnection; errors: string[] }> {
    const nats = await connect({
      ...deployment.natsOptions(user),
      name: `e2e-${user}`,
      reconnect: false,
    });
    connections.push(nats);
    const errors: string[] = [];
    void (async () => {
      for await (const status of nats.status()) {
        if (status.type === 'error') errors.push(status.error.message);
      }
    })();
    return { nats, errors };
  }

  /** Every message that reaches `subject` while `action` runs, seen by the test user. */
  async function heardOn(subject: string, action: () => Promise<void>): Promise<number> {
    const { nats: observer } = await connectAs('e2e');
    let heard = 0;
    observer.subscribe(subject, {
      callback: () => {
        heard += 1;
      },
    });
    await observer.flush();
    await action();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await observer.flush();
    return heard;
  }

  const closedWithin = (subscription: Subscription, ms = 3000) =>
    Promise.race([
      subscription.closed.then((error) => (error instanceof Error ? error.message : 'closed')),
      new Promise<string>((resolve) => setTimeout(() => resolve('still open'), ms)),
    ]);

  describe('the apps, each on its own certificate', () => {
    it('carry the order flow: events, requests, replies and broadcasts', async () => {
      await runOrderFlow(api);
    });

    it('never ran into a permission the allow-list does not grant', () => {
      expect(deployment.natsServerLog()).not.toMatch(/Violation/);
    });
  });

  describe('the one process, on the platform certificate', () => {
    let platform: Deployment | undefined;
    let nats: RunningNatsServer | undefined;
    let directory: string | undefined;

    afterAll(async () => {
      await platform?.stop();
      await nats?.stop();
      if (directory) removeTempDir(directory);
    });

    it("carries the order flow with the three services' permissions", async () => {
      directory = createTempDir('platform-nats');
      ensureDevelopmentCertificates(directory, ['platform']);
      nats = await startTlsNatsServer(directory, directory, await freePort());
      platform = await Deployment.start('postgres-nats', {
        NATS_URL: nats.url,
        ...natsTlsEnv(directory, 'platform'),
      });

      await runOrderFlow(new Api(platform));

      expect(nats.log.join('')).not.toMatch(/Violation/);
    }, 120_000);
  });

  describe('a connection', () => {
    const servers = () => deployment.natsOptions('orders').servers;
    const caFile = () => join(deployment.secretsDir, TLS_NAMES.caCertificate);
    const refused = (options: object) =>
      connect({ servers: servers(), reconnect: false, timeout: 5000, ...options }).then(
        async (nats) => {
          await nats.close();
          return 'connected';
        },
        (error: unknown) => (error instanceof Error ? error.message : String(error)),
      );
    const serverLogged = (pattern: RegExp) =>
      api.eventually(
        () => Promise.resolve(pattern.test(deployment.natsServerLog()) ? true : undefined),
        3000,
      );

    it('is refused without a client certificate', async () => {
      expect(await refused({ tls: { caFile: caFile() } })).not.toBe('connected');
      await serverLogged(/client didn't provide a certificate/);
    });

    it('is refused with a certificate that another CA signed', async () => {
      const elsewhere = createTempDir('other-ca');
      try {
        ensureDevelopmentCertificates(elsewhere, ['orders']);
        const tls = {
          caFile: caFile(),
          certFile: join(elsewhere, TLS_NAMES.certificate('orders')),
          keyFile: join(elsewhere, TLS_NAMES.key('orders')),
        };

        expect(await refused({ tls })).not.toBe('connected');
        await serverLogged(/certificate signed by unknown authority/);
      } finally {
        removeTempDir(elsewhere);
      }
    });

    it('is refused with a certificate of the CA whose subject is no user', async () => {
      ensureDevelopmentCertificates(deployment.secretsDir, ['mallory']);

      expect(await refused({ ...deployment.natsOptions('mallory') })).toMatch(
        /Authorization Violation/i,
      );
    });
  });

  describe('a service', () => {
    it.each([
      ['orders', 'evt.billing.invoice.paid', 'mark an order paid'],
      ['orders', 'evt.auth.session.revoked', 'revoke sessions'],
      ['orders', '_INBOX.billing.forged', "answer in billing's inbox"],
      ['billing', 'evt.orders.created', 'invent an order'],
      ['billing', 'auth.keys.rotated', 'publish outside the event subjects'],
      ['auth', 'billing.invoice.void', 'ask what only orders may ask'],
      ['orders', '$JS.API.STREAM.DELETE.PORTCULLIS_EVENTS', 'delete the events stream'],
      ['billing', '$JS.API.STREAM.PURGE.PORTCULLIS_EVENTS', 'purge undelivered events'],
      ['auth', '$JS.API.STREAM.UPDATE.PORTCULLIS_EVENTS', "shorten the events' retention"],
      ['orders', '$JS.API.STREAM.MSG.DELETE.PORTCULLIS_EVENTS', 'delete one event'],
      ['billing', '$JS.API.STREAM.CREATE.SIPHON', 'capture subjects in a stream of its own'],
      ['orders', '$JS.API.CONSUMER.DELETE.PORTCULLIS_EVENTS.any', "remove another's consumer"],
      ['platform', '$JS.API.STREAM.DELETE.PORTCULLIS_DLQ', 'delete the dead letters'],
    ])('%s cannot publish %s (%s)', async (user, subject) => {
      const { nats, errors } = await connectAs(user);

      const heard = await heardOn(subject, async () => {
        nats.publish(subject, '{}');
        await nats.flush();
      });

      expect(heard).toBe(0);
      await api.eventually(() => Promise.resolve(errors.length > 0 ? true : undefined), 3000);
      expect(errors).toContain(`Permissions Violation for Publish to "${subject}"`);
    });

    it.each([
      ['orders', 'billing.invoice.void'],
      ['orders', 'auth.keys.query'],
      ['orders', '_INBOX.>'],
      ['billing', '_INBOX.auth.>'],
      ['auth', 'billing.invoice.void'],
      ['platform', '_INBOX.orders.>'],
    ])('%s cannot subscribe to %s', async (user, subject) => {
      const { nats } = await connectAs(user);

      const subscription = nats.subscribe(subject);
      await nats.flush();

      expect(await closedWithin(subscription)).toBe(
        `Permissions Violation for Subscription to "${subject}"`,
      );
    });

    it.each([
      ['orders', '_INBOX.orders.e2e'],
      ['billing', 'billing.invoice.void'],
      ['auth', 'auth.keys.query'],
      ['platform', 'billing.invoice.void'],
      ['platform', '_INBOX.platform.e2e'],
    ])('%s may subscribe to %s', async (user, subject) => {
      const { nats } = await connectAs(user);

      const subscription = nats.subscribe(subject);
      await nats.flush();

      expect(await closedWithin(subscription, 500)).toBe('still open');
    });

    it('cannot delete the events stream through the JetStream API, which keeps it', async () => {
      const { nats } = await connectAs('orders');
      const manager = await jetstreamManager(nats);

      await expect(manager.streams.delete('PORTCULLIS_EVENTS')).rejects.toThrow();

      const { nats: operator } = await connectAs('e2e');
      const info = await (await jetstreamManager(operator)).streams.info('PORTCULLIS_EVENTS');
      expect(info.config.subjects).toEqual(['evt.>']);
    });

    it('may use the JetStream API, as its event stream does', async () => {
      const { nats } = await connectAs('orders');

      const reply = await nats.request('$JS.API.INFO', '', { timeout: 3000 });

      expect(reply.json<{ type: string }>().type).toBe(
        'io.nats.jetstream.api.v1.account_info_response',
      );
    });
  });
});

/**
 * Places, pays and cancels orders and logs out, so that every kind of message crosses the bus:
 * events both ways (`evt.orders.created`, `evt.billing.invoice.paid`), a request and its reply
 * (`billing.invoice.void`), and a broadcast every process applies (`evt.auth.session.revoked`).
 */
async function runOrderFlow(api: Api): Promise<void> {
  const ada = await api.customer('ada');
  const place = async () => {
    const response = await api.post('/orders', {
      token: ada.token,
      headers: { 'idempotency-key': randomUUID() },
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    });
    expect(response.status).toBe(201);
    return response.body as { id: string };
  };

  const paidOrder = await place();
  const invoice = await api.invoiceFor(paidOrder.id, ada.token);
  const paid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
    token: ada.token,
    headers: { 'idempotency-key': randomUUID() },
    body: { paymentMethod: { token: 'tok_visa' } },
  });
  expect(paid.status).toBe(200);
  await api.eventually(async () => {
    const current = await api.get(`/orders/${paidOrder.id}`, { token: ada.token });
    return current.body.status === 'paid' ? true : undefined;
  });

  const cancelledOrder = await place();
  const open = await api.invoiceFor(cancelledOrder.id, ada.token);
  const cancelled = await api.post(`/orders/${cancelledOrder.id}/cancel`, { token: ada.token });
  expect(cancelled.status).toBe(200);
  const voided = await api.get(`/billing/invoices/${open.id}`, { token: ada.token });
  expect(voided.body.status).toBe('void');

  expect((await api.post('/auth/logout', { token: ada.token })).status).toBe(204);
  await api.eventually(async () => {
    const orders = await api.get('/orders', { token: ada.token });
    const invoices = await api.get('/billing/invoices', { token: ada.token });
    return orders.status === 401 && invoices.status === 401 ? true : undefined;
  });
}
