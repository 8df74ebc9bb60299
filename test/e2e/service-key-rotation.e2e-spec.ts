import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { type KeyObject, createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { type NatsConnection, type Subscription, connect } from '@nats-io/transport-node';

import { FRAME_HEADER } from '@portcullis/messaging';

import { Api } from '../support/api';
import { ServiceImpersonator, eventsIn } from '../support/bus';
import { Deployment } from '../support/deployment';
import { securityEvents } from '../support/tokens';

jest.setTimeout(240_000);

const RELOAD_SECONDS = 1;

/**
 * Rotating the orders service's message-signing key while orders flow, with each app in its
 * own process: the commands change SECRETS_DIR, the running apps pick the trust file up.
 */
describe('service signing-key rotation, split shape', () => {
  let deployment: Deployment;
  let api: Api;
  let ada: { id: string; token: string };
  let nats: NatsConnection;
  let watch: Subscription;
  /** The kid of every orders.created event that reached the stream, in order. */
  const kidsSeen: string[] = [];

  beforeAll(async () => {
    deployment = await Deployment.start('split', { KEY_RELOAD_SECONDS: String(RELOAD_SECONDS) });
    api = new Api(deployment);
    ada = await api.customer('ada');
    nats = await connect({ ...deployment.natsOptions(), name: 'portcullis-e2e-watch' });
    watch = nats.subscribe('evt.orders.created', {
      callback: (_error, message) => {
        for (const wire of eventsIn(message.data, message.headers?.get(FRAME_HEADER))) {
          kidsSeen.push(wire.toString('latin1', 0, wire.indexOf('.')));
        }
      },
    });
  }, 150_000);

  afterAll(async () => {
    watch?.unsubscribe();
    await nats?.close();
    await deployment?.stop();
  });

  const keysCommand = (command: 'rotate' | 'retire'): string =>
    execFileSync(process.execPath, ['dist/scripts/service-keys.js', command, 'orders'], {
      env: {
        PATH: process.env.PATH ?? '',
        NODE_ENV: 'test',
        SECRETS_DIR: deployment.secretsDir,
        KEY_RELOAD_SECONDS: String(RELOAD_SECONDS),
      },
      encoding: 'utf8',
    });
  const ordersKey = (): KeyObject =>
    createPrivateKey(readFileSync(join(deployment.secretsDir, 'services/orders.key'), 'utf8'));
  const kidIn = (output: string, label: RegExp): string => {
    const match = label.exec(output);
    if (!match) throw new Error(`no kid in: ${output}`);
    return match[1];
  };

  const placeOrder = async (): Promise<string> => {
    const response = await api.post('/orders', {
      token: ada.token,
      headers: { 'idempotency-key': randomUUID() },
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    });
    expect(response.status).toBe(201);
    return response.body.id as string;
  };
  const invoiced = (orderId: string): Promise<true> =>
    api.eventually(async () => {
      const found = (await api.get(`/billing/invoices?orderId=${orderId}`, { token: ada.token }))
        .body as unknown[];
      return found.length === 1 ? true : undefined;
    }, 30_000);
  const invoicesOf = async (orderId: string): Promise<unknown[]> =>
    (await api.get(`/billing/invoices?orderId=${orderId}`, { token: ada.token })).body as unknown[];
  /** Publishes orders.created signed with `key`, for a new order of ada's; returns its id. */
  const publishSignedWith = async (key: KeyObject): Promise<string> => {
    const bus = await ServiceImpersonator.connect(deployment, new Map([['orders', key]]));
    try {
      const orderId = randomUUID();
      await bus.publish(
        'orders',
        'orders.created',
        { orderId, customerId: ada.id, totalCents: 1_500, currency: 'EUR' },
        { id: ada.id, roles: ['customer'] },
      );
      return orderId;
    } finally {
      await bus.close();
    }
  };
  const refusals = (reason: string): number =>
    securityEvents(deployment.logs('billing')).filter((event) => event.reason === reason).length;

  it('accepts both keys during the overlap, signs with the new one after a restart, and refuses the retired one', async () => {
    const oldKey = ordersKey();

    // Orders flow while the key rotates.
    let flowing = true;
    const placed: string[] = [];
    const flow = (async () => {
      while (flowing) placed.push(await placeOrder());
    })();
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const rotated = keysCommand('rotate');
    const newKid = kidIn(rotated, /new signing key (orders-[0-9a-f]{16}) is current/);
    const oldKid = kidIn(rotated, /(orders-[0-9a-f]{16}) is previous/);
    const newKey = ordersKey();
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    flowing = false;
    await flow;

    // Overlap: the running orders app still signs with the old key, and billing takes it.
    expect(placed.length).toBeGreaterThan(2);
    for (const orderId of placed) await invoiced(orderId);
    expect(kidsSeen.length).toBeGreaterThanOrEqual(placed.length);
    expect(new Set(kidsSeen)).toEqual(new Set([oldKid]));
    await invoiced(await publishSignedWith(oldKey));
    await invoiced(await publishSignedWith(newKey));

    // The switch: restarted, orders signs with the new key, and billing still applies it.
    await deployment.kill('orders');
    await deployment.restart('orders');
    const seenBefore = kidsSeen.length;
    const after = await Promise.all([placeOrder(), placeOrder(), placeOrder()]);
    for (const orderId of after) await invoiced(orderId);
    await api.eventually(() => Promise.resolve(kidsSeen.length >= seenBefore + 3 || undefined));
    expect(kidsSeen.slice(seenBefore)).toEqual([newKid, newKid, newKid]);

    // Retirement: once billing has reloaded the trust file, the old key is unknown.
    expect(keysCommand('retire')).toContain(`key ${oldKid} retired`);
    await new Promise((resolve) => setTimeout(resolve, 3 * RELOAD_SECONDS * 1_000));
    const unknownBefore = refusals('unknown_key');
    const forged = await publishSignedWith(oldKey);
    await api.eventually(() =>
      Promise.resolve(refusals('unknown_key') > unknownBefore ? true : undefined),
    );
    expect(await invoicesOf(forged)).toEqual([]);
    await invoiced(await placeOrder());
  });
});
