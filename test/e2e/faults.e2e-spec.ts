import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';

import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

import { EVENTS_STREAM } from '@portcullis/contracts';
import { JetStreamEventStream, encodeFrame } from '@portcullis/messaging';

import { Api } from '../support/api';
import { ServiceImpersonator } from '../support/bus';
import { Deployment, type ShapeName } from '../support/deployment';
import { securityEvents } from '../support/tokens';

jest.setTimeout(180_000);

/** Fault tests need real processes and a bus of their own: `npm test` runs them split only. */
describe('failures and hostile messages, split shape', () => {
  const shape: ShapeName = 'split';
  let deployment: Deployment;
  let api: Api;
  let bus: ServiceImpersonator;
  let ada: { id: string; token: string };

  beforeAll(async () => {
    // This suite pays invoice ids that do not exist on purpose, many within a minute; the
    // probing rule (tested in the detection suite) would rightly cut the customer off.
    deployment = await Deployment.start(shape, { DETECTION_PROBING_THRESHOLD: '1000' });
    api = new Api(deployment);
    ada = await api.customer('ada');
    bus = await ServiceImpersonator.connect(deployment);
  }, 120_000);

  afterAll(async () => {
    await bus?.close();
    await deployment?.stop();
  });

  const placeOrder = async (token: string): Promise<string> => {
    const response = await api.post('/orders', {
      token,
      headers: { 'idempotency-key': randomUUID() },
      body: { items: [{ sku: 'KEY-002', quantity: 1 }] },
    });
    expect(response.status).toBe(201);
    return response.body.id as string;
  };

  const invoicesOf = async (orderId: string, token = ada.token): Promise<any[]> =>
    (await api.get(`/billing/invoices?orderId=${orderId}`, { token })).body as any[];

  const events = (app: string): ReturnType<typeof securityEvents> =>
    securityEvents(deployment.logs(app));

  /** How many `reason` refusals billing has recorded so far. */
  const refusals = (reason: string): number =>
    events('billing').filter((event) => event.reason === reason).length;

  /** Waits until billing has recorded more `reason` refusals than `before`. */
  const refusedAgain = (reason: string, before: number): Promise<true> =>
    api.eventually(() => Promise.resolve(refusals(reason) > before ? true : undefined));

  it('invoices every one of 200 orders exactly once when NATS goes down and comes back', async () => {
    const nats = deployment.ownNatsServer();
    const placed: string[] = [];
    let outage: Promise<void> | undefined;
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < 200) {
          next += 1;
          if (next === 50) {
            outage = (async () => {
              await nats.stop();
              await new Promise((resolve) => setTimeout(resolve, 2_000));
              await nats.start();
            })();
          }
          placed.push(await placeOrder(ada.token));
        }
      }),
    );
    await outage;

    expect(placed).toHaveLength(200);
    for (const orderId of placed) {
      const invoices = await api.eventually(async () => {
        const found = await invoicesOf(orderId);
        return found.length > 0 ? found : undefined;
      }, 60_000);
      expect(invoices).toHaveLength(1);
    }
  });

  it('invoices every order exactly once when billing crashes and comes back', async () => {
    const first = await Promise.all(Array.from({ length: 20 }, () => placeOrder(ada.token)));
    await deployment.kill('billing');
    const during = await Promise.all(Array.from({ length: 20 }, () => placeOrder(ada.token)));
    await deployment.restart('billing');

    for (const orderId of [...first, ...during]) {
      const invoices = await api.eventually(async () => {
        const found = await invoicesOf(orderId);
        return found.length > 0 ? found : undefined;
      }, 60_000);
      expect(invoices).toHaveLength(1);
    }
  });

  it('marks every paid order paid once, and charges once, across a billing crash', async () => {
    const orders = await Promise.all(Array.from({ length: 10 }, () => placeOrder(ada.token)));
    const invoices = await Promise.all(
      orders.map((orderId) => api.invoiceFor(orderId, ada.token) as Promise<{ id: string }>),
    );
    const pay = (invoiceId: string) =>
      api
        .post(`/billing/invoices/${invoiceId}/pay`, {
          token: ada.token,
          headers: { 'idempotency-key': `crash-${invoiceId}` },
          body: { paymentMethod: { token: 'tok_visa' } },
        })
        .catch(() => undefined);

    const inFlight = invoices.map(({ id }) => pay(id));
    await deployment.kill('billing');
    await Promise.all(inFlight);
    await deployment.restart('billing');

    // A client retries with the same key until it has an answer: one charge per invoice.
    for (const { id } of invoices) {
      const answer = await api.eventually(async () => {
        const response = await pay(id);
        return response?.status === 200 ? response.body : undefined;
      }, 30_000);
      const again = await pay(id);
      expect(again?.body).toEqual(answer);
      expect((await pay(randomUUID()))?.status ?? 0).not.toBe(200);
    }
    for (const orderId of orders) {
      const order = await api.eventually(async () => {
        const current = await api.get(`/orders/${orderId}`, { token: ada.token });
        return current.body.status === 'paid' ? current.body : undefined;
      }, 30_000);
      expect(order.status).toBe('paid');
    }
  });

  describe('a frame of events', () => {
    const actor = () => ({ id: ada.id, roles: ['customer'] });
    const newOrder = () => ({
      orderId: randomUUID(),
      customerId: ada.id,
      totalCents: 1_250,
      currency: 'EUR',
    });

    it('has each of its events checked on its own: the valid one applied once, a forged one and a repeat refused', async () => {
      const valid = newOrder();
      const forgedOrder = newOrder();
      const wire = bus.seal('orders', 'orders.created', valid, { actor: actor() });
      const forged = bus.seal('orders', 'orders.created', forgedOrder, { actor: actor() });
      forged[forged.length - 3] ^= 0x01;
      const forgeries = refusals('bad_signature');
      const replays = refusals('replayed');

      await bus.publishFrame('orders.created', encodeFrame([wire, forged, wire]), '3');

      await refusedAgain('bad_signature', forgeries);
      await refusedAgain('replayed', replays);
      expect(await invoicesOf(valid.orderId)).toHaveLength(1);
      expect(await invoicesOf(forgedOrder.orderId)).toEqual([]);
    });

    it('is refused whole, and recorded, when its header and its body disagree', async () => {
      const orders = [newOrder(), newOrder()];
      const wires = orders.map((order) =>
        bus.seal('orders', 'orders.created', order, { actor: actor() }),
      );
      const malformed = refusals('malformed');

      await bus.publishFrame('orders.created', encodeFrame(wires), '3');
      await refusedAgain('malformed', malformed);
      for (const order of orders) expect(await invoicesOf(order.orderId)).toEqual([]);
      // Sent again as a well-formed frame, the same events are applied: nothing was spent.
      await bus.publishFrame('orders.created', encodeFrame(wires), '2');
      for (const order of orders) {
        await api.eventually(async () =>
          (await invoicesOf(order.orderId)).length === 1 ? true : undefined,
        );
      }
    });

    it('with a header that cannot be read is refused, and the events after it are applied', async () => {
      const after = newOrder();
      const malformed = refusals('malformed');
      const nats = await connect({ ...deployment.natsOptions(), name: 'e2e-raw-headers' });
      try {
        // A header block the client library cannot decode (a space in a header name), written
        // as raw protocol: HPUB <subject> <header bytes> <total bytes>.
        const block = 'NATS/1.0\r\nBad Key: 1\r\n\r\n';
        const body = 'not an event';
        const socket = (
          nats as unknown as { protocol: { transport: { send(b: Uint8Array): void } } }
        ).protocol.transport;
        socket.send(
          Buffer.from(
            `HPUB evt.orders.created ${block.length} ${block.length + body.length}\r\n${block}${body}\r\n`,
          ),
        );
        await nats.flush();
      } finally {
        await nats.close();
      }
      await refusedAgain('malformed', malformed);
      await bus.publish('orders', 'orders.created', after, actor());
      await api.eventually(async () =>
        (await invoicesOf(after.orderId)).length === 1 ? true : undefined,
      );
    });

    it('is delivered again with only the events that asked for another try', async () => {
      const connection = await connect({ ...deployment.natsOptions(), name: 'e2e-frames' });
      const stream = new JetStreamEventStream(connection);
      const type = `e2e.frames.${randomUUID().slice(0, 8)}`;
      const seen: string[] = [];
      try {
        await Promise.all(
          ['a', 'b', 'c'].map((text) => stream.publish(type, randomUUID(), Buffer.from(text))),
        );
        const manager = await jetstreamManager(connection);
        const info = await manager.streams.info(EVENTS_STREAM, { subjects_filter: `evt.${type}` });
        // Published in one turn: one stream message.
        expect(info.state.subjects).toEqual({ [`evt.${type}`]: 1 });

        await stream.consume(
          type,
          `e2e-frames-${randomUUID().slice(0, 8)}`,
          ({ data, attempt }) => {
            const text = Buffer.from(data).toString();
            seen.push(`${text}@${attempt}`);
            return Promise.resolve(text === 'b' && attempt === 1 ? 'retry' : 'done');
          },
          'shared',
          64,
        );
        await api.eventually(() => Promise.resolve(seen.length >= 4 ? true : undefined));
        // Acknowledged after the second delivery: nothing comes a third time.
        await new Promise((resolve) => setTimeout(resolve, 6_000));
      } finally {
        await stream.close();
        await connection.close();
      }
      expect(seen.sort()).toEqual(['a@1', 'b@1', 'b@2', 'c@1']);
    });
  });

  describe('a captured event', () => {
    it('has no effect when replayed, again after a restart, and each replay is recorded', async () => {
      const orderId = randomUUID();
      const payload = { orderId, customerId: ada.id, totalCents: 4_999, currency: 'EUR' };
      const actor = { id: ada.id, roles: ['customer'] };
      const wire = await bus.publish('orders', 'orders.created', payload, actor);
      await api.eventually(async () =>
        (await invoicesOf(orderId)).length === 1 ? true : undefined,
      );

      await bus.publishWire('orders.created', wire);
      await refusedAgain('replayed', 0);
      await deployment.kill('billing');
      await deployment.restart('billing');
      const before = refusals('replayed');
      await bus.publishWire('orders.created', wire);
      await refusedAgain('replayed', before);

      expect(await invoicesOf(orderId)).toHaveLength(1);
    });

    it('sealed by the relay in a batch is refused when replayed or when its proof is changed', async () => {
      const PROOF = /^[1-9][0-9]*:[0-9]+:(?:[0-9a-f]{64})+$/;
      // Orders placed at once: the relay seals the events it sends together under one
      // signature, so some of these leave in a batch, each with its inclusion proof.
      let wire: Buffer | undefined;
      let orderId = '';
      for (let burst = 0; burst < 5 && !wire; burst += 1) {
        const placed = await Promise.all(Array.from({ length: 8 }, () => placeOrder(ada.token)));
        for (const id of placed) {
          await api.eventually(async () =>
            (await invoicesOf(id)).length === 1 ? true : undefined,
          );
        }
        for (const candidate of await bus.recent('orders.created')) {
          const id = placed.find((placedId) => candidate.toString('utf8').includes(placedId));
          if (id && PROOF.test(candidate.toString('latin1').split('.')[2])) {
            wire = candidate;
            orderId = id;
            break;
          }
        }
      }
      if (!wire) throw new Error('no orders.created event was sealed in a batch');
      const [, , proof] = wire.toString('latin1').split('.');
      expect(proof).toMatch(PROOF);
      // Sealed together, they were sent together: several events in one stream message.
      expect(await bus.framesAmongRecent('orders.created')).toBeGreaterThan(0);

      const replays = refusals('replayed');
      await bus.publishWire('orders.created', wire);
      await refusedAgain('replayed', replays);

      const forged = Buffer.from(wire);
      const proofStart = wire.indexOf(proof);
      const digit = proofStart + proof.lastIndexOf(':') + 1;
      forged[digit] = forged[digit] === 0x30 ? 0x31 : 0x30;
      const forgeries = refusals('bad_signature');
      await bus.publishWire('orders.created', forged);
      await refusedAgain('bad_signature', forgeries);

      expect(await invoicesOf(orderId)).toHaveLength(1);
    });

    it('is refused when one byte is changed, when stale, or when sent by a service not allowed it', async () => {
      const attempts: Array<[string, () => Buffer]> = [];
      const orderIds: string[] = [];
      const payloadFor = () => {
        const orderId = randomUUID();
        orderIds.push(orderId);
        return { orderId, customerId: ada.id, totalCents: 100, currency: 'EUR' };
      };
      const actor = { id: ada.id, roles: ['customer'] };
      attempts.push([
        'bad_signature',
        () => {
          const wire = bus.seal('orders', 'orders.created', payloadFor(), { actor });
          wire[wire.length - 3] ^= 0x01;
          return wire;
        },
      ]);
      attempts.push([
        'expired',
        () => bus.seal('orders', 'orders.created', payloadFor(), { actor, ttlMs: -1_000 }),
      ]);
      attempts.push([
        'type_not_allowed',
        () => bus.seal('billing', 'orders.created', payloadFor(), { actor }),
      ]);

      for (const [reason, make] of attempts) {
        const before = refusals(reason);
        await bus.publishWire('orders.created', make());
        await refusedAgain(reason, before);
      }
      for (const orderId of orderIds) expect(await invoicesOf(orderId)).toEqual([]);
    });
  });
});
