import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

interface AuditEvent {
  sequence: number;
  id: string;
  service: string;
  type: string;
  outcome: string;
  correlationId: string;
  actor?: { userId?: string };
  resource?: { type: string; id?: string };
  details?: Record<string, unknown>;
}

const PASSWORD = 'a long enough password 42';

describe.each(availableShapes())('the central audit trail, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let ada: { id: string; email: string; token: string };
  let auditorToken: string;
  let adminToken: string;

  beforeAll(async () => {
    deployment = await Deployment.start(shape);
    api = new Api(deployment);
    ada = await api.customer('ada');
    adminToken = await api.login(ADMIN.email, ADMIN.password);
    const auditor = await api.customer('auditor');
    const promoted = await api.request('PATCH', `/auth/users/${auditor.id}/roles`, {
      token: adminToken,
      body: { roles: ['auditor'] },
    });
    expect(promoted.status).toBe(200);
    auditorToken = await api.login(auditor.email, PASSWORD);
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  async function events(query: string, token = auditorToken): Promise<AuditEvent[]> {
    const response = await api.get(`/audit/events?${query}`, { token });
    expect(response.status).toBe(200);
    return response.body.items as AuditEvent[];
  }

  /** The records of a correlation id once `ready` accepts them. */
  function recordsOf(
    correlationId: string,
    ready: (found: AuditEvent[]) => boolean,
    timeoutMs = 30_000,
  ): Promise<AuditEvent[]> {
    return api.eventually(async () => {
      const found = await events(`correlationId=${correlationId}&limit=200`);
      return ready(found) ? found : undefined;
    }, timeoutMs);
  }

  /** Logs in, places an order and pays it, all under one correlation id. */
  async function orderFlow(correlationId: string): Promise<{ orderId: string; invoiceId: string }> {
    const headers = { 'x-correlation-id': correlationId };
    const login = await api.post('/auth/login', {
      headers,
      body: { email: ada.email, password: PASSWORD },
    });
    expect(login.status).toBe(200);
    const token = login.body.accessToken as string;
    const order = await api.post('/orders', {
      token,
      headers,
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    });
    expect(order.status).toBe(201);
    const invoice = await api.invoiceFor(order.body.id, token);
    const paid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
      token,
      headers: { ...headers, 'idempotency-key': randomUUID() },
      body: { paymentMethod: { token: 'tok_visa' } },
    });
    expect(paid.status).toBe(200);
    return { orderId: order.body.id, invoiceId: invoice.id };
  }

  it("chains one order's records from auth, orders and billing under its correlation id", async () => {
    const correlationId = `audit-flow-${randomUUID()}`;
    const { orderId, invoiceId } = await orderFlow(correlationId);

    const found = await recordsOf(
      correlationId,
      (records) =>
        ['order.created', 'invoice.opened', 'invoice.paid', 'order.paid'].every((type) =>
          records.some((record) => record.type === type),
        ) && records.filter((record) => record.type === 'http.request').length >= 3,
    );

    expect(new Set(found.map((record) => record.service))).toEqual(
      new Set(['auth', 'orders', 'billing']),
    );
    expect(found.find((r) => r.type === 'order.created')).toMatchObject({
      service: 'orders',
      outcome: 'allowed',
      actor: { userId: ada.id },
      resource: { type: 'order', id: orderId },
    });
    expect(found.find((r) => r.type === 'invoice.paid')).toMatchObject({
      service: 'billing',
      resource: { type: 'invoice', id: invoiceId },
    });
    expect(found.filter((r) => r.type === 'http.request').map((r) => r.details?.route)).toEqual(
      expect.arrayContaining(['/auth/login', '/orders', '/billing/invoices/:id/pay']),
    );
    expect(found.some((r) => r.type === 'message.handled' && r.service === 'billing')).toBe(true);
    const sequences = found.map((record) => record.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => b - a));
  });

  it('lets auditors and admins read and verify the trail, and refuses customers', async () => {
    const customer = await Promise.all([
      api.get('/audit/events', { token: ada.token }),
      api.get('/audit/verify', { token: ada.token }),
    ]);
    const anonymous = await api.get('/audit/events');
    const auditor = await api.get('/audit/events', { token: auditorToken });
    const admin = await api.get('/audit/verify', { token: adminToken });

    expect(customer.map((response) => response.status)).toEqual([403, 403]);
    expect(anonymous.status).toBe(401);
    expect(auditor.status).toBe(200);
    expect(admin.status).toBe(200);
  });

  it('filters by type, actor, resource, outcome and time, a bounded page at a time', async () => {
    const correlationId = `audit-filter-${randomUUID()}`;
    const before = new Date(Date.now() - 1_000).toISOString();
    const { orderId } = await orderFlow(correlationId);
    await recordsOf(correlationId, (records) => records.some((r) => r.type === 'order.paid'));

    const created = await events(`type=order.created&actor=${ada.id}&from=${before}`);
    const byResource = await events(`resourceType=order&resourceId=${orderId}`);
    const denied = await events('outcome=denied');
    const future = await events(`from=${new Date(Date.now() + 60_000).toISOString()}`);

    expect(created.length).toBeGreaterThan(0);
    expect(created.every((r) => r.type === 'order.created' && r.actor?.userId === ada.id)).toBe(
      true,
    );
    expect(byResource.map((r) => r.type).sort()).toEqual(['order.created', 'order.paid']);
    expect(denied.length).toBeGreaterThan(0);
    expect(denied.every((r) => r.outcome === 'denied')).toBe(true);
    expect(future).toEqual([]);
  });

  it('pages newest first by sequence, continuing from `next`', async () => {
    const first = await api.get('/audit/events?limit=2', { token: auditorToken });
    const second = await api.get(`/audit/events?limit=2&before=${first.body.next}`, {
      token: auditorToken,
    });

    const sequences = [...first.body.items, ...second.body.items].map(
      (record: AuditEvent) => record.sequence,
    );
    expect(sequences).toHaveLength(4);
    expect(sequences).toEqual([...sequences].sort((a, b) => b - a));
    expect(new Set(sequences).size).toBe(4);
  });

  it('refuses unknown, malformed and oversized queries with 400', async () => {
    const responses = await Promise.all(
      [
        'foo=1',
        'limit=1000',
        'limit=0',
        'outcome=maybe',
        'from=yesterday',
        'before=-1',
        'actor=xyz',
        'actor=%00',
        'resourceId=%00',
        'resourceId=a%00b',
      ].map((query) => api.get(`/audit/events?${query}`, { token: auditorToken })),
    );

    expect(responses.map((response) => response.status)).toEqual(Array(10).fill(400));
    expect(responses[0].body).toMatchObject({ statusCode: 400, error: 'Bad Request' });
  });

  it('records a request whose path holds control characters, and keeps recording after it', async () => {
    const correlationId = `audit-nul-${randomUUID()}`;
    const headers = { 'x-correlation-id': correlationId };
    for (const path of ['/orders/%00/cancel', '/billing/invoices/%00%01/pay']) {
      const refused = await api.post(path, {
        token: ada.token,
        headers: { ...headers, 'idempotency-key': randomUUID() },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(refused.status).toBe(400);
    }
    await orderFlow(correlationId);

    const found = await recordsOf(
      correlationId,
      (records) =>
        records.some((r) => r.type === 'order.paid') &&
        records.filter((r) => r.type === 'http.request' && r.outcome === 'failed').length >= 2,
    );

    expect(JSON.stringify(found)).not.toContain('\\u0000');
  });

  it('stores no password or token, even of a failed login', async () => {
    const correlationId = `audit-secret-${randomUUID()}`;
    const secret = `wrong password ${randomUUID()}`;
    const refused = await api.post('/auth/login', {
      headers: { 'x-correlation-id': correlationId },
      body: { email: ada.email, password: secret },
    });
    expect(refused.status).toBe(401);

    const found = await recordsOf(correlationId, (records) =>
      records.some((r) => r.type === 'http.request' && r.outcome === 'denied'),
    );

    expect(JSON.stringify(found)).not.toContain(secret);
    expect(JSON.stringify(found)).not.toContain(ada.token);
  });

  it('verifies the whole chain', async () => {
    const response = await api.get('/audit/verify', { token: auditorToken });

    expect(response.body).toEqual({ ok: true, records: expect.any(Number) });
    expect(response.body.records).toBeGreaterThan(10);
  });

  if (shape === 'split') {
    it('keeps the records made while NATS is down and chains them once it is back', async () => {
      const nats = deployment.ownNatsServer();
      const correlationId = `audit-outage-${randomUUID()}`;
      await nats.stop();
      try {
        const refused = await api.post('/auth/login', {
          headers: { 'x-correlation-id': correlationId },
          body: { email: ada.email, password: 'not the password at all' },
        });
        expect(refused.status).toBe(401);
        const order = await api.post('/orders', {
          token: ada.token,
          headers: { 'x-correlation-id': correlationId },
          body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
        });
        expect(order.status).toBe(201);
      } finally {
        await nats.start();
      }

      // Delivery resumes once the relays and consumers have reconnected, which takes longer on
      // a loaded machine; what matters is that every record arrives, once.
      const found = await recordsOf(
        correlationId,
        (records) =>
          records.some((r) => r.service === 'auth') &&
          records.some((r) => r.type === 'order.created'),
        90_000,
      );

      expect(new Set(found.map((r) => r.id)).size).toBe(found.length);
      expect((await api.get('/audit/verify', { token: auditorToken })).body.ok).toBe(true);
    }, 150_000);
  }
});
