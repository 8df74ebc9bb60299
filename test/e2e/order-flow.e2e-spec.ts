import { randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

const ERROR_SHAPE = {
  statusCode: expect.any(Number),
  error: expect.any(String),
  message: expect.anything(),
  correlationId: expect.any(String),
};

describe.each(availableShapes())('the public contract, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let ada: { id: string; email: string; token: string };
  let bob: { id: string; email: string; token: string };

  beforeAll(async () => {
    deployment = await Deployment.start(shape);
    api = new Api(deployment);
    ada = await api.customer('ada');
    bob = await api.customer('bob');
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  async function placeOrder(token: string, items = [{ sku: 'KEY-001', quantity: 2 }]) {
    const response = await api.post('/orders', { token, body: { items } });
    expect(response.status).toBe(201);
    return response.body;
  }

  describe('operations', () => {
    it('reports every process healthy and serves Swagger UI and the OpenAPI document', async () => {
      for (const base of deployment.baseUrls()) {
        const health = await fetch(`${base}/health`);
        expect(health.status).toBe(200);
        expect(((await health.json()) as { status: string }).status).toBe('ok');
        const docs = await fetch(`${base}/docs`);
        expect(docs.status).toBe(200);
        expect(await docs.text()).toContain('swagger');
        const openApi: any = await (await fetch(`${base}/docs-json`)).json();
        expect(openApi.components.securitySchemes.bearer).toMatchObject({ scheme: 'bearer' });
        // Every path and query parameter is documented with a scalar type a client can send.
        const parameters = Object.values(openApi.paths as Record<string, any>).flatMap((item) =>
          Object.values(item as Record<string, any>).flatMap((op: any) => op.parameters ?? []),
        );
        for (const parameter of parameters) {
          expect([parameter.name, parameter.schema?.type]).toEqual([
            parameter.name,
            expect.stringMatching(/^(string|integer|number|boolean|array)$/),
          ]);
        }
      }
    });

    it('echoes a caller correlation id in the header and the error body', async () => {
      const response = await api.get('/orders', {
        headers: { 'x-correlation-id': 'trace-abc.123' },
      });
      expect(response.status).toBe(401);
      expect(response.headers.get('x-correlation-id')).toBe('trace-abc.123');
      expect(response.body).toEqual({
        ...ERROR_SHAPE,
        statusCode: 401,
        correlationId: 'trace-abc.123',
      });
    });
  });

  describe('accounts', () => {
    it('registers customers only, whatever roles the body claims', async () => {
      const response = await api.post('/auth/register', {
        body: {
          email: 'mallory@example.com',
          password: 'a long enough password',
          roles: ['admin'],
        },
      });
      expect(response.status).toBe(400);
      expect(response.body.message).toContain('roles: property roles should not exist');
      const me = await api.get('/auth/me', { token: ada.token });
      expect(me.body).toEqual({ id: ada.id, email: ada.email, roles: ['customer'] });
    });

    it('refuses a second account with the same email', async () => {
      const response = await api.post('/auth/register', {
        body: { email: ada.email.toUpperCase(), password: 'another long password' },
      });
      expect(response.status).toBe(409);
    });

    it('answers an unknown email and a wrong password identically', async () => {
      const unknown = await api.post('/auth/login', {
        body: { email: 'nobody@example.com', password: 'whatever password' },
      });
      const wrong = await api.post('/auth/login', {
        body: { email: ada.email, password: 'not the right password' },
      });
      expect(unknown.status).toBe(401);
      expect(wrong.status).toBe(401);
      expect({ ...unknown.body, correlationId: '' }).toEqual({ ...wrong.body, correlationId: '' });
    });

    it('issues RS256 access tokens whose key is published in the JWKS', async () => {
      const [header] = ada.token.split('.');
      const { alg, kid } = JSON.parse(Buffer.from(header, 'base64url').toString());
      expect(alg).toBe('RS256');
      const jwks = await api.get('/.well-known/jwks.json');
      expect(jwks.body.keys.map((key: { kid: string }) => key.kid)).toContain(kid);
      const discovery = await api.get('/.well-known/openid-configuration');
      expect(discovery.body.jwks_uri).toMatch(/\/\.well-known\/jwks\.json$/);
    });
  });

  describe('authentication', () => {
    it.each([
      ['GET', '/orders'],
      ['POST', '/orders'],
      ['GET', '/billing/invoices'],
      ['GET', '/auth/me'],
    ])('refuses %s %s without a token', async (method, path) => {
      const response = await api.request(method, path, {
        body: method === 'POST' ? {} : undefined,
      });
      expect(response.status).toBe(401);
      expect(response.body).toEqual({ ...ERROR_SHAPE, statusCode: 401 });
    });

    it.each([
      ['garbage', 'not-a-token'],
      ['a tampered payload', 'TAMPER'],
      ['alg none', 'NONE'],
    ])('refuses %s', async (_label, kind) => {
      const [header, payload, signature] = ada.token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
      const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString(
        'base64url',
      );
      const token =
        kind === 'TAMPER'
          ? `${header}.${forged}.${signature}`
          : kind === 'NONE'
            ? `${Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')}.${forged}.`
            : kind;
      const response = await api.get('/orders', { token });
      expect(response.status).toBe(401);
      expect(JSON.stringify(response.body)).not.toMatch(/jwt|jsonwebtoken|stack|at /i);
    });
  });

  describe('the order flow', () => {
    it('prices an order from the catalogue, invoices it by message, and pays it', async () => {
      const catalogue = await api.get('/products');
      expect(catalogue.status).toBe(200);
      expect(catalogue.body.length).toBeGreaterThanOrEqual(5);
      const padlock = catalogue.body.find((p: { sku: string }) => p.sku === 'KEY-001');

      const order = await placeOrder(ada.token, [{ sku: 'KEY-001', quantity: 3 }]);
      expect(order).toMatchObject({
        status: 'pending_payment',
        customerId: ada.id,
        totalCents: padlock.unitPriceCents * 3,
        currency: padlock.currency,
        lines: [{ sku: 'KEY-001', quantity: 3, unitPriceCents: padlock.unitPriceCents }],
      });

      const invoice = await api.invoiceFor(order.id, ada.token);
      expect(invoice).toMatchObject({
        orderId: order.id,
        status: 'open',
        amountCents: order.totalCents,
      });

      const paid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `pay-${order.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(paid.status).toBe(200);
      expect(paid.body.status).toBe('paid');

      const settled = await api.eventually(async () => {
        const current = await api.get(`/orders/${order.id}`, { token: ada.token });
        return current.body.status === 'paid' ? current.body : undefined;
      });
      expect(settled.status).toBe('paid');
    });

    it('charges once when a payment is retried, even concurrently', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const pay = (key: string) =>
        api.post(`/billing/invoices/${invoice.id}/pay`, {
          token: ada.token,
          headers: { 'idempotency-key': key },
          body: { paymentMethod: { token: 'tok_visa' } },
        });

      const attempts = await Promise.all([1, 2, 3, 4, 5].map(() => pay(`retry-${order.id}`)));
      expect(attempts.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
      expect(new Set(attempts.map((a) => a.body.paidAt)).size).toBe(1);

      const again = await pay(`retry-${order.id}`);
      expect(again.body).toEqual(attempts[0].body);
      const secondCharge = await pay(`another-${order.id}`);
      expect(secondCharge.status).toBe(409);
    });

    it('pays one invoice when one Idempotency-Key is sent for several at once', async () => {
      const orders = await Promise.all([1, 2, 3, 4].map(() => placeOrder(ada.token)));
      const invoices = await Promise.all(orders.map((o) => api.invoiceFor(o.id, ada.token)));
      const key = `shared-${orders[0].id}`;

      const attempts = await Promise.all(
        invoices.map((invoice) =>
          api.post(`/billing/invoices/${invoice.id}/pay`, {
            token: ada.token,
            headers: { 'idempotency-key': key },
            body: { paymentMethod: { token: 'tok_visa' } },
          }),
        ),
      );

      const statuses = attempts.map((a) => a.status).sort();
      expect(statuses).toEqual([200, 422, 422, 422]);
      for (const refused of attempts.filter((a) => a.status === 422)) {
        expect(refused.body).toEqual({ ...ERROR_SHAPE, statusCode: 422 });
      }
      const states = await Promise.all(
        invoices.map((i) => api.get(`/billing/invoices/${i.id}`, { token: ada.token })),
      );
      expect(states.map((st) => st.body.status).sort()).toEqual(['open', 'open', 'open', 'paid']);
    });

    it('declines tok_declined with 402 and leaves the invoice payable', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const declined = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `declined-${order.id}` },
        body: { paymentMethod: { token: 'tok_declined' } },
      });
      expect(declined.status).toBe(402);
      expect(declined.body).toEqual({ ...ERROR_SHAPE, statusCode: 402 });
      const current = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(current.body.status).toBe('open');
      const retried = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `second-${order.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(retried.status).toBe(200);
    });

    it('requires an Idempotency-Key to pay', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const response = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(response.status).toBe(400);
      expect(response.body.message).toEqual(['Idempotency-Key header is required']);
    });

    it('returns the first order when an order is retried with the same key', async () => {
      const headers = { 'idempotency-key': `order-${ada.id}-1` };
      const body = { items: [{ sku: 'GATE-002', quantity: 1 }] };
      const first = await api.post('/orders', { token: ada.token, headers, body });
      const second = await api.post('/orders', { token: ada.token, headers, body });
      expect(first.status).toBe(201);
      expect(second.body.id).toBe(first.body.id);
      const different = await api.post('/orders', {
        token: ada.token,
        headers,
        body: { items: [{ sku: 'GATE-002', quantity: 2 }] },
      });
      expect(different.status).toBe(422);
    });

    it('places one order when the same request is sent several times at once', async () => {
      const headers = { 'idempotency-key': `order-${ada.id}-at-once` };
      const body = { items: [{ sku: 'KEY-001', quantity: 3 }] };
      const others = [1, 2, 3].map(() => api.post('/orders', { token: ada.token, body }));
      const retries = [1, 2, 3, 4, 5].map(() =>
        api.post('/orders', { token: ada.token, headers, body }),
      );
      const answers = await Promise.all([...retries, ...others]);

      expect(answers.map((answer) => answer.status)).toEqual(Array(8).fill(201));
      const ids = answers.map((answer) => answer.body.id as string);
      expect(new Set(ids.slice(0, 5)).size).toBe(1);
      expect(new Set(ids).size).toBe(4);
      const mine = await api.get('/orders', { token: ada.token });
      const listed = (mine.body as Array<{ id: string }>).filter((order) => order.id === ids[0]);
      expect(listed).toHaveLength(1);
      await api.invoiceFor(ids[0], ada.token);
      const invoices = await api.get(`/billing/invoices?orderId=${ids[0]}`, { token: ada.token });
      expect(invoices.body).toHaveLength(1);
    });

    it('cancels an unpaid order and voids its invoice, but refuses once paid', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const cancelled = await api.post(`/orders/${order.id}/cancel`, { token: ada.token });
      expect(cancelled.status).toBe(200);
      expect(cancelled.body.status).toBe('cancelled');
      const voided = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(voided.body.status).toBe('void');
      const payVoid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `void-${order.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(payVoid.status).toBe(409);

      const paidOrder = await placeOrder(ada.token);
      const paidInvoice = await api.invoiceFor(paidOrder.id, ada.token);
      await api.post(`/billing/invoices/${paidInvoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `paid-${paidOrder.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      const refused = await api.post(`/orders/${paidOrder.id}/cancel`, { token: ada.token });
      expect(refused.status).toBe(409);
    });
  });

  describe('ownership', () => {
    it("answers 404 for another customer's order and invoice, and changes nothing", async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);

      expect((await api.get(`/orders/${order.id}`, { token: bob.token })).status).toBe(404);
      expect((await api.post(`/orders/${order.id}/cancel`, { token: bob.token })).status).toBe(404);
      expect((await api.get(`/billing/invoices/${invoice.id}`, { token: bob.token })).status).toBe(
        404,
      );
      const pay = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: bob.token,
        headers: { 'idempotency-key': `bob-${order.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });
      expect(pay.status).toBe(404);

      const bobsOrders = await api.get('/orders', { token: bob.token });
      expect(bobsOrders.body.map((o: { id: string }) => o.id)).not.toContain(order.id);
      const bobsInvoices = await api.get(`/billing/invoices?orderId=${order.id}`, {
        token: bob.token,
      });
      expect(bobsInvoices.body).toEqual([]);
      const untouched = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(untouched.body.status).toBe('open');
    });

    it('lets the bootstrap admin see every order but not place one', async () => {
      const order = await placeOrder(ada.token);
      const adminToken = await api.login(ADMIN.email, ADMIN.password);
      const seen = await api.get(`/orders/${order.id}`, { token: adminToken });
      expect(seen.status).toBe(200);
      const placed = await api.post('/orders', {
        token: adminToken,
        body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
      });
      expect(placed.status).toBe(403);
    });
  });

  describe('bad input', () => {
    it.each([
      [
        'a quantity sent as a string',
        { items: [{ sku: 'KEY-001', quantity: '2' }] },
        'items.0.quantity',
      ],
      [
        'a quantity above 1000',
        { items: [{ sku: 'KEY-001', quantity: 1001 }] },
        'items.0.quantity',
      ],
      ['a fractional quantity', { items: [{ sku: 'KEY-001', quantity: 1.5 }] }, 'items.0.quantity'],
      [
        'a client-chosen price',
        { items: [{ sku: 'KEY-001', quantity: 1, unitPriceCents: 1 }] },
        'items.0.unitPriceCents',
      ],
      [
        'an owner in the body',
        { items: [{ sku: 'KEY-001', quantity: 1 }], customerId: 'x' },
        'customerId',
      ],
      ['no items', { items: [] }, 'items'],
      [
        '51 lines',
        { items: Array.from({ length: 51 }, (_, i) => ({ sku: `S-${i}`, quantity: 1 })) },
        'items',
      ],
      ['items that are not objects', { items: ['KEY-001'] }, 'items.0'],
    ])('refuses %s with 400 naming the field', async (_label, body, field) => {
      const response = await api.post('/orders', { token: ada.token, body });
      expect(response.status).toBe(400);
      expect(response.body).toEqual({ ...ERROR_SHAPE, statusCode: 400 });
      expect(JSON.stringify(response.body.message)).toContain(field);
    });

    it('refuses an unknown sku with 422', async () => {
      const response = await api.post('/orders', {
        token: ada.token,
        body: { items: [{ sku: 'NOPE-1', quantity: 1 }] },
      });
      expect(response.status).toBe(422);
      expect(response.body.message).toEqual(['items.0.sku is not in the catalogue']);
    });

    it('refuses malformed JSON, oversized bodies and bad ids cleanly', async () => {
      const malformed = await api.post('/orders', {
        token: ada.token,
        rawBody: '{"items": [',
        headers: { 'content-type': 'application/json' },
      });
      expect(malformed.status).toBe(400);
      expect(malformed.body).toEqual({ ...ERROR_SHAPE, message: 'request body is not valid JSON' });

      const before = (await api.get('/orders', { token: ada.token })).body.length;
      const repeated = await api.post('/orders', {
        token: ada.token,
        rawBody:
          '{"items":[{"sku":"KEY-001","quantity":1}],"items":[{"sku":"KEY-001","quantity":1000}]}',
        headers: { 'content-type': 'application/json', 'idempotency-key': randomUUID() },
      });
      expect(repeated.status).toBe(400);
      expect(repeated.body).toEqual({
        ...ERROR_SHAPE,
        message: 'request body must not repeat a key within one object',
      });
      expect((await api.get('/orders', { token: ada.token })).body).toHaveLength(before);

      const huge = await api.post('/orders', {
        token: ada.token,
        rawBody: JSON.stringify({ items: [], pad: 'x'.repeat(150_000) }),
        headers: { 'content-type': 'application/json' },
      });
      expect(huge.status).toBe(413);

      const badId = await api.get('/orders/not-a-uuid', { token: ada.token });
      expect(badId.status).toBe(400);
      expect(badId.body.message).toEqual(['id must be a UUID']);

      const missing = await api.get('/orders/00000000-0000-4000-8000-000000000000', {
        token: ada.token,
      });
      expect(missing.status).toBe(404);
    });

    it('refuses a payment token that is not a provider token', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const response = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `card-${order.id}` },
        body: { paymentMethod: { token: '4242424242424242' } },
      });
      expect(response.status).toBe(400);
      expect(JSON.stringify(response.body.message)).toContain('paymentMethod.token');
      expect(JSON.stringify(response.body)).not.toContain('4242424242424242');
    });
  });
});
