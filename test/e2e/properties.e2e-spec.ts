import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import fc from 'fast-check';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

const RUNS = Number(process.env.PROPERTY_RUNS ?? 120);
const CATALOGUE = ['GATE-001', 'GATE-002', 'KEY-001', 'KEY-002', 'KEY-003', 'LOCK-001'];

/** Printable ASCII, the only text a header value may carry. */
const headerText = fc.string({ unit: 'grapheme-ascii', maxLength: 60 });

const contentType = fc.constantFrom(
  'application/json',
  'application/json; charset=utf-8',
  'APPLICATION/JSON',
  'application/merge-patch+json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
);

/** JSON that is odd in every way the parser and validators must survive. */
const hostileJson = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom<unknown>(
    JSON.parse('{"__proto__":{"admin":true}}'),
    { constructor: { prototype: { admin: true } } },
    { items: [{ sku: 'KEY-001', quantity: 1, constructor: 1 }] },
    { items: null },
    { items: {} },
    { items: 'KEY-001' },
    [],
    null,
    1e308,
    'items',
  ),
);

const quantity = fc.oneof(
  fc.integer(),
  fc.integer({ min: 1, max: 1000 }),
  fc.double(),
  fc.constantFrom<unknown>('2', 'false', true, null, -0, 2 ** 53, [], {}),
);

const orderItem = fc.record(
  {
    sku: fc.oneof(fc.constantFrom(...CATALOGUE), fc.string({ maxLength: 40 })),
    quantity,
    unitPriceCents: fc.integer(),
    customerId: fc.uuid(),
  },
  { requiredKeys: [] },
);

/** Order bodies near the valid shape: right keys, wrong values, extra keys. */
const nearOrder = fc.record(
  {
    items: fc.oneof(fc.array(orderItem, { maxLength: 60 }), hostileJson),
    status: fc.constantFrom('paid', 'cancelled'),
    customerId: fc.uuid(),
    totalCents: fc.integer(),
  },
  { requiredKeys: [] },
);

const payBody = fc.record(
  {
    paymentMethod: fc.oneof(
      fc.record(
        {
          token: fc.oneof(
            fc.constantFrom('tok_visa', 'tok_declined'),
            fc.string({ maxLength: 80 }),
          ),
          number: fc.constant('4242424242424242'),
        },
        { requiredKeys: [] },
      ),
      hostileJson,
    ),
    amountCents: fc.integer(),
    status: fc.constant('paid'),
  },
  { requiredKeys: [] },
);

function isValidOrder(body: unknown): boolean {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return false;
  const keys = Object.keys(body);
  const items = (body as { items?: unknown }).items;
  if (keys.length !== 1 || keys[0] !== 'items' || !Array.isArray(items)) return false;
  if (items.length < 1 || items.length > 50) return false;
  return items.every(
    (item: any) =>
      typeof item === 'object' &&
      item !== null &&
      Object.keys(item).sort().join() === 'quantity,sku' &&
      CATALOGUE.includes(item.sku) &&
      Number.isInteger(item.quantity) &&
      item.quantity >= 1 &&
      item.quantity <= 1000,
  );
}

function looksLikePayment(body: unknown): boolean {
  if (typeof body !== 'object' || body === null) return false;
  const method = (body as { paymentMethod?: unknown }).paymentMethod;
  return typeof method === 'object' && method !== null && 'token' in method;
}

describe.each(availableShapes())('generated requests, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let ada: { id: string; email: string; token: string };
  let adminToken: string;
  let invoiceId: string;

  beforeAll(async () => {
    deployment = await Deployment.start(shape);
    api = new Api(deployment);
    ada = await api.customer('ada');
    adminToken = await api.login(ADMIN.email, ADMIN.password);
    const order = await api.post('/orders', {
      token: ada.token,
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    });
    invoiceId = (await api.invoiceFor(order.body.id, ada.token)).id;
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  /** Every order and invoice, with their statuses, as the admin sees them. */
  async function snapshot(): Promise<string> {
    const orders = await api.get('/orders', { token: adminToken });
    const invoices = await api.get('/billing/invoices', { token: adminToken });
    expect([orders.status, invoices.status]).toEqual([200, 200]);
    return JSON.stringify([orders.body, invoices.body]);
  }

  /** An authorization header: the real token, a damaged one, another scheme, or none. */
  const authorization = fc.oneof(
    fc.constant<'valid'>('valid'),
    fc.constant(undefined),
    headerText,
    fc.constantFrom('tampered', 'lowercase', 'bare', 'basic'),
  );

  function authorizationHeader(choice: string | undefined): Record<string, string> {
    const [header, payload, signature] = ada.token.split('.');
    switch (choice) {
      case undefined:
        return {};
      case 'valid':
        return { authorization: `Bearer ${ada.token}` };
      case 'tampered':
        return { authorization: `Bearer ${header}.${payload}x.${signature}` };
      case 'lowercase':
        return { authorization: `bearer ${header}.${payload}.${signature.slice(1)}` };
      case 'bare':
        return { authorization: ada.token };
      case 'basic':
        return { authorization: `Basic ${Buffer.from('ada:password').toString('base64')}` };
      default:
        return { authorization: `Bearer ${choice}` };
    }
  }

  const extraHeaders = fc.record(
    {
      'idempotency-key': headerText,
      'x-correlation-id': headerText,
      'x-forwarded-for': headerText,
      accept: headerText,
    },
    { requiredKeys: [] },
  );

  /** Sends one generated request and checks it was refused cleanly. */
  async function send(
    path: string,
    body: unknown,
    raw: string | undefined,
    type: string,
    headers: Record<string, string>,
  ): Promise<void> {
    const response = await fetch(deployment.urlFor(path), {
      method: 'POST',
      headers: { ...headers, 'content-type': type },
      body: raw ?? JSON.stringify(body),
    });
    const text = await response.text();

    if (response.status < 400 || response.status >= 500) {
      throw new Error(`${path} answered ${response.status}: ${text.slice(0, 300)}`);
    }
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed).sort()).toEqual(['correlationId', 'error', 'message', 'statusCode']);
  }

  const rawOrText = fc.option(
    fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.constantFrom('{"items": [', '{"items":' + '['.repeat(5000), '\u0000', '{"a":1}}'),
    ),
    { nil: undefined },
  );

  it('refuses generated order bodies, headers and tokens with a 4xx, changing nothing', async () => {
    const before = await snapshot();

    await fc.assert(
      fc.asyncProperty(
        fc.oneof(nearOrder, hostileJson),
        rawOrText,
        contentType,
        authorization,
        extraHeaders,
        async (body, raw, type, auth, headers) => {
          const validToken = auth === 'valid';
          fc.pre(!(validToken && raw === undefined && isValidOrder(body)));
          await send('/orders', body, raw, type, { ...headers, ...authorizationHeader(auth) });
        },
      ),
      { numRuns: RUNS },
    );

    expect(await snapshot()).toBe(before);
  });

  it('refuses generated login bodies and headers with a 4xx', async () => {
    const before = await snapshot();
    const loginBody = fc.oneof(
      hostileJson,
      fc.record(
        {
          email: fc.oneof(fc.emailAddress(), fc.constant(ada.email), fc.string({ maxLength: 300 })),
          password: fc.oneof(fc.string({ maxLength: 200 }), fc.integer(), fc.constant(null)),
          roles: fc.constant(['admin']),
        },
        { requiredKeys: [] },
      ),
    );

    await fc.assert(
      fc.asyncProperty(
        loginBody,
        rawOrText,
        contentType,
        authorization,
        extraHeaders,
        async (body, raw, type, auth, headers) => {
          await send('/auth/login', body, raw, type, { ...headers, ...authorizationHeader(auth) });
        },
      ),
      { numRuns: RUNS },
    );

    expect(await snapshot()).toBe(before);
  });

  it('refuses generated payments with a 4xx, charging nothing', async () => {
    const before = await snapshot();
    const invoicePath = fc.oneof(
      fc.constant('own'),
      fc.uuid(),
      fc.string({ maxLength: 40 }).map((text) => encodeURIComponent(text)),
    );

    await fc.assert(
      fc.asyncProperty(
        invoicePath,
        fc.oneof(payBody, hostileJson),
        rawOrText,
        contentType,
        authorization,
        extraHeaders,
        async (target, body, raw, type, auth, headers) => {
          const id = target === 'own' ? invoiceId : target;
          const charges =
            auth === 'valid' && target === 'own' && raw === undefined && looksLikePayment(body);
          fc.pre(!charges);
          await send(`/billing/invoices/${id}/pay`, body, raw, type, {
            ...headers,
            ...authorizationHeader(auth),
          });
        },
      ),
      { numRuns: RUNS },
    );

    expect(await snapshot()).toBe(before);
    const health = await fetch(deployment.urlFor('/health'));
    expect(health.status).toBe(200);
  });
});
