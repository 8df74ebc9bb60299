import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes, randomUUID } from 'node:crypto';

import { Api } from '../support/api';
import { ServiceImpersonator } from '../support/bus';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

// Records travel through outboxes to the collector before a rule sees them.
jest.setTimeout(90_000);

const PASSWORD = 'a long enough password 42';
const PROBING = { threshold: 10, windowSeconds: 60 };
const REFUSALS = { threshold: 5, windowSeconds: 60 };
/** How long a probing customer's tokens may stay usable after the last denied request. */
const REFUSAL_DEADLINE_MS = 10_000;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Customer {
  id: string;
  email: string;
  accessToken: string;
  refreshToken: string;
}

/** An audit record as `GET /audit/events` returns it. */
interface AuditRecordView {
  type: string;
  outcome: string;
  reason?: string;
  actor?: { userId?: string; clientIp?: string };
  resource?: { type: string; id?: string };
  details?: Record<string, unknown>;
}

describe.each(availableShapes())('abuse detection, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let auditorToken: string;

  beforeAll(async () => {
    deployment = await Deployment.start(shape, {
      DETECTION_PROBING_THRESHOLD: String(PROBING.threshold),
      DETECTION_PROBING_WINDOW_SECONDS: String(PROBING.windowSeconds),
      DETECTION_REFUSALS_THRESHOLD: String(REFUSALS.threshold),
      DETECTION_REFUSALS_WINDOW_SECONDS: String(REFUSALS.windowSeconds),
      LOGIN_ACCOUNT_FREE_FAILURES: '2',
      LOGIN_LOCKOUT_SECONDS: '60',
    });
    api = new Api(deployment);
    const admin = await api.login(ADMIN.email, ADMIN.password);
    const auditor = await customer('auditor');
    const promoted = await api.request('PATCH', `/auth/users/${auditor.id}/roles`, {
      token: admin,
      body: { roles: ['auditor'] },
    });
    expect(promoted.status).toBe(200);
    auditorToken = await api.login(auditor.email, PASSWORD);
  }, 180_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  async function customer(label: string): Promise<Customer> {
    const email = `${label}-${randomBytes(5).toString('hex')}@example.com`;
    const registered = await api.post('/auth/register', { body: { email, password: PASSWORD } });
    expect(registered.status).toBe(201);
    const login = await api.post('/auth/login', { body: { email, password: PASSWORD } });
    expect(login.status).toBe(200);
    return { id: registered.body.id, email, ...login.body };
  }

  /** Alerts of a rule in the central audit trail that `matches` accepts, once there are some. */
  async function alertsOf(
    rule: string,
    matches: (record: AuditRecordView) => boolean,
  ): Promise<AuditRecordView[]> {
    return api.eventually(async () => {
      const response = await api.get('/audit/events?type=security.alert', {
        token: auditorToken,
      });
      expect(response.status).toBe(200);
      const records: AuditRecordView[] = Array.isArray(response.body)
        ? response.body
        : response.body.items;
      const found = records.filter(
        (record) => record.type === 'security.alert' && record.reason === rule && matches(record),
      );
      return found.length > 0 ? found : undefined;
    }, 30_000);
  }

  describe('a customer who asks for other customers’ orders and invoices', () => {
    let ada: Customer;
    let mallory: Customer;
    let objects: string[];

    beforeAll(async () => {
      ada = await customer('ada');
      mallory = await customer('mallory');
      objects = [];
      for (const key of ['first', 'second']) {
        const order = await api.post('/orders', {
          token: ada.accessToken,
          body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
          headers: { 'idempotency-key': `${key}-${randomUUID()}` },
        });
        expect(order.status).toBe(201);
        const invoice = await api.invoiceFor(order.body.id as string, ada.accessToken);
        objects.push(`/orders/${order.body.id}`, `/billing/invoices/${invoice.id}`);
      }
    });

    it('gets 404 for each, then every token of theirs is refused while other customers’ work', async () => {
      expect((await api.get('/orders', { token: mallory.accessToken })).status).toBe(200);

      const probes = Array.from({ length: PROBING.threshold }, (_, i) => objects[i % 4]);
      for (const path of probes) {
        expect((await api.get(path, { token: mallory.accessToken })).status).toBe(404);
      }
      const lastProbe = Date.now();

      for (const path of ['/orders', '/billing/invoices', '/auth/me']) {
        await api.eventually(async () => {
          const response = await api.get(path, { token: mallory.accessToken });
          return response.status === 401 ? true : undefined;
        }, REFUSAL_DEADLINE_MS);
      }
      expect(Date.now() - lastProbe).toBeLessThan(REFUSAL_DEADLINE_MS);
      const refresh = await api.post('/auth/refresh', {
        body: { refreshToken: mallory.refreshToken },
      });
      expect(refresh.status).toBe(401);
      for (const path of objects) {
        expect((await api.get(path, { token: ada.accessToken })).status).toBe(200);
      }

      const alerts = await alertsOf('access.probing', (r) => r.resource?.id === mallory.id);
      expect(alerts).toEqual([
        expect.objectContaining({
          outcome: 'denied',
          resource: { type: 'account', id: mallory.id },
          details: expect.objectContaining({ action: 'sessions_revoked', sessions: 1 }),
        }),
      ]);
    });

    it('cuts off a customer who guesses ids that do not exist', async () => {
      const eve = await customer('eve');

      for (let i = 0; i < PROBING.threshold; i += 1) {
        const path = i % 2 ? `/orders/${randomUUID()}` : `/billing/invoices/${randomUUID()}`;
        expect((await api.get(path, { token: eve.accessToken })).status).toBe(404);
      }

      await api.eventually(async () => {
        const response = await api.get('/auth/me', { token: eve.accessToken });
        return response.status === 401 ? true : undefined;
      }, REFUSAL_DEADLINE_MS);
      const alerts = await alertsOf('access.probing', (r) => r.resource?.id === eve.id);
      expect(alerts).toHaveLength(1);
    });

    it('is not cut off for fewer denials than the threshold', async () => {
      const grace = await customer('grace');

      for (const path of objects.slice(0, 3)) {
        expect((await api.get(path, { token: grace.accessToken })).status).toBe(404);
      }
      await sleep(3000);

      expect((await api.get('/orders', { token: grace.accessToken })).status).toBe(200);
      expect((await api.get('/auth/me', { token: grace.accessToken })).status).toBe(200);
    });
  });

  describe('failed logins for one account', () => {
    it('lock it with 429 and raise one login.brute_force alert naming the account', async () => {
      const victim = await customer('victim');
      const wrong = { email: victim.email, password: 'not the right password' };
      const statuses: number[] = [];

      for (let attempt = 0; attempt < 6 && !statuses.includes(429); attempt += 1) {
        const response = await api.post('/auth/login', { body: wrong });
        statuses.push(response.status);
        // Past the two free failures, attempts must wait 1 s, then 2 s; the fourth locks.
        if (attempt === 1 || attempt === 2) await sleep(1100 * 2 ** (attempt - 1));
      }

      expect(statuses).toEqual([401, 401, 401, 401, 429]);
      const right = await api.post('/auth/login', {
        body: { email: victim.email, password: PASSWORD },
      });
      expect(right.status).toBe(429);
      expect(right.headers.get('retry-after')).toMatch(/^\d+$/);
      const alerts = await alertsOf('login.brute_force', (r) => r.resource?.id === victim.id);
      expect(alerts).toEqual([
        expect.objectContaining({
          outcome: 'denied',
          actor: expect.objectContaining({ clientIp: '127.0.0.1' }),
          details: expect.objectContaining({ subject: 'account', failures: 4 }),
        }),
      ]);
    });
  });

  describe('a refresh token presented twice', () => {
    it('revokes the session and raises one refresh.reuse alert', async () => {
      const ada = await customer('reuse');
      const first = await api.post('/auth/refresh', { body: { refreshToken: ada.refreshToken } });
      expect(first.status).toBe(200);

      const reuse = await api.post('/auth/refresh', { body: { refreshToken: ada.refreshToken } });
      expect(reuse.status).toBe(401);

      const rotated = await api.post('/auth/refresh', {
        body: { refreshToken: first.body.refreshToken },
      });
      expect(rotated.status).toBe(401);
      await api.eventually(async () => {
        const me = await api.get('/auth/me', { token: first.body.accessToken });
        return me.status === 401 ? true : undefined;
      }, REFUSAL_DEADLINE_MS);
      const alerts = await alertsOf('refresh.reuse', (r) => r.resource?.id === ada.id);
      expect(alerts).toEqual([
        expect.objectContaining({
          outcome: 'denied',
          details: expect.objectContaining({ action: 'session_revoked' }),
        }),
      ]);
    });
  });

  if (shape !== 'embedded') {
    describe('stale messages signed by one sender', () => {
      let bus: ServiceImpersonator;

      beforeAll(async () => {
        bus = await ServiceImpersonator.connect(deployment);
      });

      afterAll(async () => {
        await bus?.close();
      });

      it('raise one messages.refused alert for a flood within the window', async () => {
        const actor = { id: randomUUID(), roles: ['customer'] };
        for (let i = 0; i < REFUSALS.threshold * 3; i += 1) {
          const payload = { orderId: randomUUID(), customerId: actor.id, totalCents: 100 };
          const wire = bus.seal(
            'orders',
            'orders.created',
            { ...payload, currency: 'EUR' },
            {
              actor,
              ttlMs: -1_000,
            },
          );
          await bus.publishWire('orders.created', wire);
        }

        const alerts = await alertsOf('messages.refused', (r) => r.details?.sender === 'orders');
        await sleep(3000);
        expect(await alertsOf('messages.refused', (r) => r.details?.sender === 'orders')).toEqual(
          alerts,
        );
        expect(alerts).toEqual([
          expect.objectContaining({
            outcome: 'allowed',
            details: expect.objectContaining({ sender: 'orders', threshold: REFUSALS.threshold }),
          }),
        ]);
      });
    });
  }
});
