import {
  type KeyObject,
  createHmac,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  sign,
} from 'node:crypto';
import { connect } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { Api } from '../support/api';
import { ServiceImpersonator } from '../support/bus';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

type Customer = { id: string; email: string; token: string };

const ERROR_SHAPE = {
  statusCode: expect.any(Number),
  error: expect.any(String),
  message: expect.anything(),
  correlationId: expect.any(String),
};

/** What no error body may ever contain: library names, stack frames, key material. */
const INTERNALS = /jsonwebtoken|passport|fastify|typeorm|class-validator|stack|\bat \w|BEGIN/i;

/** Routes anyone may call without a token; every other documented operation answers 401. */
const PUBLIC_OPERATIONS = new Set([
  'GET /health',
  'GET /health/live',
  'GET /health/ready',
  'GET /products',
  'POST /auth/register',
  'POST /auth/login',
  'POST /auth/refresh',
  'GET /.well-known/jwks.json',
  'GET /.well-known/openid-configuration',
]);

const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

describe.each(availableShapes())('OWASP API Security Top 10, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let ada: Customer;
  let bob: Customer;
  let adminToken: string;

  beforeAll(async () => {
    deployment = await Deployment.start(shape);
    api = new Api(deployment);
    ada = await api.customer('ada');
    bob = await api.customer('bob');
    adminToken = await api.login(ADMIN.email, ADMIN.password);
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  async function placeOrder(token: string): Promise<any> {
    const response = await api.post('/orders', {
      token,
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
    });
    expect(response.status).toBe(201);
    return response.body;
  }

  /** Every order and invoice, as the admin sees them: the state a refused request must keep. */
  async function snapshot(): Promise<string> {
    const orders = await api.get('/orders', { token: adminToken });
    const invoices = await api.get('/billing/invoices', { token: adminToken });
    return JSON.stringify([orders.body, invoices.body]);
  }

  /** Waits until the deployment's logs hold a security event mentioning every given text. */
  function audited(...texts: string[]): Promise<true> {
    return api.eventually(() => {
      const found = deployment
        .logs()
        .split('\n')
        .some((line) => line.includes('security event') && texts.every((t) => line.includes(t)));
      return Promise.resolve(found ? (true as const) : undefined);
    }, 5_000);
  }

  describe('API1 broken object level authorization', () => {
    it("answers 404 for another customer's order and invoice over HTTP, and audits it", async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const before = await snapshot();

      const attempts = await Promise.all([
        api.get(`/orders/${order.id}`, { token: bob.token }),
        api.post(`/orders/${order.id}/cancel`, { token: bob.token }),
        api.get(`/billing/invoices/${invoice.id}`, { token: bob.token }),
        api.post(`/billing/invoices/${invoice.id}/pay`, {
          token: bob.token,
          headers: { 'idempotency-key': `bola-${order.id}` },
          body: { paymentMethod: { token: 'tok_visa' } },
        }),
      ]);

      expect(attempts.map((a) => a.status)).toEqual([404, 404, 404, 404]);
      for (const attempt of attempts)
        expect(attempt.body).toEqual({ ...ERROR_SHAPE, statusCode: 404 });
      expect(await snapshot()).toBe(before);
      await audited('access.denied', 'not_owner', order.id);
      await audited('access.denied', 'not_owner', invoice.id);
    });

    it('answers the same 404 for an id that does not exist', async () => {
      const missing = await api.get(`/orders/${randomUUID()}`, { token: bob.token });
      const order = await placeOrder(ada.token);
      const foreign = await api.get(`/orders/${order.id}`, { token: bob.token });

      expect(missing.status).toBe(404);
      expect({ ...foreign.body, correlationId: '' }).toEqual({
        ...missing.body,
        correlationId: '',
      });
    });

    it.each(['null', 'undefined', '0', '%20', '1%20OR%201=1', '*'])(
      'refuses the id %p with 400 before any query',
      async (id) => {
        const order = await api.get(`/orders/${id}`, { token: ada.token });
        const invoice = await api.get(`/billing/invoices/${id}`, { token: ada.token });

        expect([order.status, invoice.status]).toEqual([400, 400]);
        expect(order.body.message).toEqual(['id must be a UUID']);
      },
    );

    it('keeps listings to the caller, whatever the query says', async () => {
      const order = await placeOrder(ada.token);

      const listed = await api.get('/orders', { token: bob.token });
      const scoped = await api.get(`/billing/invoices?orderId=${order.id}`, { token: bob.token });
      const named = await api.get(`/billing/invoices?customerId=${ada.id}`, { token: bob.token });

      expect(listed.body.map((o: { id: string }) => o.id)).not.toContain(order.id);
      expect(scoped.body).toEqual([]);
      expect(named.status).toBe(400);
    });
  });

  describe('API2 broken authentication', () => {
    let kid: string;

    beforeAll(async () => {
      const jwks = await api.get('/.well-known/jwks.json');
      kid = jwks.body.keys[0].kid;
    });

    function claims(overrides: object = {}): object {
      const now = Math.floor(Date.now() / 1000);
      return {
        sub: ada.id,
        sid: randomUUID(),
        roles: ['customer', 'admin'],
        iss: 'urn:portcullis:auth',
        aud: 'urn:portcullis:api',
        iat: now,
        exp: now + 600,
        ...overrides,
      };
    }

    const attacker = generateKeyPairSync('rsa', { modulusLength: 2048 });

    function signedByAttacker(header: object, body: object = claims()): string {
      const input = `${b64(header)}.${b64(body)}`;
      return `${input}.${sign('RSA-SHA256', Buffer.from(input), attacker.privateKey).toString('base64url')}`;
    }

    const forgeries: Array<[string, () => Promise<string> | string]> = [
      ['no token at all', () => ''],
      ['a token that is not a JWT', () => 'not-a-token'],
      ['a real token with its claims changed', () => tamper(ada.token, { roles: ['admin'] })],
      ['a real token with its signature stripped', () => ada.token.replace(/\.[^.]+$/, '.')],
      ['alg none', () => `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims())}.`],
      ['a key we do not publish, under our kid', () => signedByAttacker({ alg: 'RS256', kid })],
      ['a key embedded in the header', () => embeddedKey(attacker.publicKey, kid)],
      [
        'a jku pointing elsewhere',
        () => signedByAttacker({ alg: 'RS256', kid, jku: 'http://127.0.0.1:9/jwks.json' }),
      ],
      ['an unknown kid', () => signedByAttacker({ alg: 'RS256', kid: 'no-such-key' })],
      ['HS256 keyed with our public key', () => hmacWithPublicKey(api, kid, claims())],
      ['RS512', () => signedByAttacker({ alg: 'RS512', kid })],
    ];

    it.each(forgeries)('refuses %s with a plain 401', async (_label, make) => {
      const token = await make();
      const response = await api.get('/orders', {
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });

      expect(response.status).toBe(401);
      expect(response.body).toEqual({ ...ERROR_SHAPE, statusCode: 401 });
      expect(JSON.stringify(response.body)).not.toMatch(INTERNALS);
    });

    it('takes no token from the query string or a cookie', async () => {
      const query = await api.get(`/orders?access_token=${ada.token}`);
      const cookie = await api.get('/orders', { headers: { cookie: `access_token=${ada.token}` } });

      expect([query.status, cookie.status]).toEqual([401, 401]);
    });

    it('refuses a tampered copy of a token it has just accepted (and cached)', async () => {
      expect((await api.get('/orders', { token: ada.token })).status).toBe(200);
      expect((await api.get('/orders', { token: ada.token })).status).toBe(200);

      const forged = await api.get('/orders', { token: tamper(ada.token, { sub: bob.id }) });

      expect(forged.status).toBe(401);
    });
  });

  describe('API3 broken object property level authorization (mass assignment)', () => {
    it.each<[string, object]>([
      ['a status', { items: [{ sku: 'KEY-001', quantity: 1 }], status: 'paid' }],
      ['an owner', { items: [{ sku: 'KEY-001', quantity: 1 }], customerId: randomUUID() }],
      ['a total', { items: [{ sku: 'KEY-001', quantity: 1 }], totalCents: 1 }],
      ['a line price', { items: [{ sku: 'KEY-001', quantity: 1, unitPriceCents: 1 }] }],
      ['a currency', { items: [{ sku: 'KEY-001', quantity: 1 }], currency: 'XXX' }],
      ['an id', { items: [{ sku: 'KEY-001', quantity: 1 }], id: randomUUID() }],
    ])('refuses an order body that sets %s, and creates nothing', async (_label, body) => {
      const before = await snapshot();

      const response = await api.post('/orders', { token: ada.token, body });

      expect(response.status).toBe(400);
      expect(await snapshot()).toBe(before);
    });

    it.each<[string, object]>([
      ['an amount', { paymentMethod: { token: 'tok_visa' }, amountCents: 1 }],
      ['a status', { paymentMethod: { token: 'tok_visa' }, status: 'paid' }],
      ['an owner', { paymentMethod: { token: 'tok_visa' }, customerId: randomUUID() }],
      ['a nested extra', { paymentMethod: { token: 'tok_visa', amountCents: 1 } }],
    ])('refuses a payment body that sets %s, and charges nothing', async (_label, body) => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);

      const response = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        headers: { 'idempotency-key': `mass-${randomUUID()}` },
        body,
      });

      expect(response.status).toBe(400);
      const after = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(after.body.status).toBe('open');
    });

    it.each<[string, unknown]>([
      ['an empty object', {}],
      ['null', null],
      ['a null payment method', { paymentMethod: null }],
      ['a payment method that is a string', { paymentMethod: 'tok_visa' }],
    ])('refuses a payment body that is %s with 400, never 500', async (_label, body) => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);

      const response = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: ada.token,
        rawBody: JSON.stringify(body),
        headers: { 'idempotency-key': `shape-${randomUUID()}`, 'content-type': 'application/json' },
      });

      expect(response.status).toBe(400);
    });

    it.each<[string, object]>([
      ['roles', { roles: ['admin'] }],
      ['an id', { id: randomUUID() }],
    ])('refuses a registration that sets %s', async (_label, extra) => {
      const email = `mallory-${randomUUID()}@example.com`;
      const response = await api.post('/auth/register', {
        body: { email, password: 'a long enough password 42', ...extra },
      });

      expect(response.status).toBe(400);
      const login = await api.post('/auth/login', {
        body: { email, password: 'a long enough password 42' },
      });
      expect(login.status).toBe(401);
    });

    it('takes the acting user from the token, never from the body', async () => {
      const response = await api.post('/orders', {
        token: ada.token,
        body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
      });

      expect(response.body.customerId).toBe(ada.id);
    });
  });

  describe('API4 unrestricted resource consumption', () => {
    const deep = (levels: number) => `{"items":${'['.repeat(levels)}${']'.repeat(levels)}}`;

    it.each([
      ['POST', '/orders'],
      ['POST', '/auth/login'],
      ['POST', '/auth/register'],
    ])('refuses a body over 100 kB on %s %s with 413', async (method, path) => {
      const response = await api.request(method, path, {
        token: ada.token,
        rawBody: JSON.stringify({ email: 'x'.repeat(110_000), items: [] }),
        headers: { 'content-type': 'application/json' },
      });

      expect(response.status).toBe(413);
      expect(response.body).toEqual({ ...ERROR_SHAPE, statusCode: 413 });
    });

    it.each([
      ['POST', '/orders', 40_000],
      ['POST', '/auth/login', 40_000],
      ['POST', '/orders', 33],
    ])(
      'refuses JSON nested deeply on %s %s (%i levels) with 400, never 500',
      async (method, path, levels) => {
        const response = await api.request(method, path, {
          token: ada.token,
          rawBody: deep(levels),
          headers: { 'content-type': 'application/json' },
        });

        expect(response.status).toBe(400);
        expect(response.body.message).toMatch(/nested more than 32 levels/);
      },
    );

    it.each<[string, unknown]>([
      ['51 lines', Array.from({ length: 51 }, (_, i) => ({ sku: `S-${i}`, quantity: 1 }))],
      ['10 000 lines', Array.from({ length: 10_000 }, () => 1)],
      ['a quantity of 1001', [{ sku: 'KEY-001', quantity: 1001 }]],
      ['a quantity past 2^53', [{ sku: 'KEY-001', quantity: 2 ** 53 + 2 }]],
      ['a quantity of 1e308', [{ sku: 'KEY-001', quantity: 1e308 }]],
      ['a negative quantity', [{ sku: 'KEY-001', quantity: -1 }]],
      ['a 10 kB sku', [{ sku: 'K'.repeat(10_000), quantity: 1 }]],
    ])('refuses an order with %s', async (_label, items) => {
      const response = await api.post('/orders', { token: ada.token, body: { items } });

      expect(response.status).toBe(400);
      expect(JSON.stringify(response.body).length).toBeLessThan(10_000);
    });

    it('prices the largest order accepted within safe integer minor units', async () => {
      const items = ['GATE-001', 'GATE-002', 'KEY-001', 'KEY-002', 'KEY-003', 'LOCK-001'].map(
        (sku) => ({ sku, quantity: 1000 }),
      );

      const response = await api.post('/orders', { token: ada.token, body: { items } });

      expect(response.status).toBe(201);
      expect(Number.isSafeInteger(response.body.totalCents)).toBe(true);
    });

    it.each([
      ['a form body', 'application/x-www-form-urlencoded', 'items=1'],
      ['plain text', 'text/plain', '{"items":[]}'],
    ])('refuses %s as an unsupported media type', async (_label, type, body) => {
      const response = await api.post('/orders', {
        token: ada.token,
        rawBody: body,
        headers: { 'content-type': type },
      });

      expect(response.status).toBe(415);
    });
  });

  describe('API5 broken function level authorization', () => {
    it('refuses an admin the customer-only order and payment routes', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);

      const placed = await api.post('/orders', {
        token: adminToken,
        body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
      });
      const paid = await api.post(`/billing/invoices/${invoice.id}/pay`, {
        token: adminToken,
        headers: { 'idempotency-key': `admin-${order.id}` },
        body: { paymentMethod: { token: 'tok_visa' } },
      });

      expect([placed.status, paid.status]).toEqual([403, 403]);
      const after = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(after.body.status).toBe('open');
      await audited('access.denied', 'missing_role');
    });
  });

  describe('API5 broken function level authorization, by role', () => {
    it('refuses a customer every administration route, and changes nothing', async () => {
      const attempts = await Promise.all([
        api.get('/auth/users', { token: ada.token }),
        api.request('PATCH', `/auth/users/${ada.id}/roles`, {
          token: ada.token,
          body: { roles: ['admin'] },
        }),
        api.request('DELETE', `/auth/users/${bob.id}/sessions`, { token: ada.token }),
        api.post('/auth/keys/rotate', { token: ada.token, body: {} }),
        api.get('/audit/events', { token: ada.token }),
        api.get('/audit/verify', { token: ada.token }),
      ]);

      expect(attempts.map((a) => a.status)).toEqual([403, 403, 403, 403, 403, 403]);
      const me = await api.get('/auth/me', { token: ada.token });
      expect(me.body.roles).toEqual(['customer']);
      expect((await api.get('/orders', { token: bob.token })).status).toBe(200);
    });

    it('lets an auditor read nothing of orders, invoices or payments', async () => {
      const order = await placeOrder(ada.token);
      const invoice = await api.invoiceFor(order.id, ada.token);
      const auditor = await api.customer('auditor');
      const promoted = await api.request('PATCH', `/auth/users/${auditor.id}/roles`, {
        token: adminToken,
        body: { roles: ['auditor'] },
      });
      expect(promoted.status).toBe(200);
      const token = await api.login(auditor.email, 'a long enough password 42');

      const attempts = await Promise.all([
        api.get('/orders', { token }),
        api.get(`/orders/${order.id}`, { token }),
        api.post('/orders', { token, body: { items: [{ sku: 'KEY-001', quantity: 1 }] } }),
        api.post(`/orders/${order.id}/cancel`, { token }),
        api.get('/billing/invoices', { token }),
        api.get(`/billing/invoices/${invoice.id}`, { token }),
        api.post(`/billing/invoices/${invoice.id}/pay`, {
          token,
          headers: { 'idempotency-key': `auditor-${order.id}` },
          body: { paymentMethod: { token: 'tok_visa' } },
        }),
        api.get('/auth/users', { token }),
      ]);

      expect(attempts.map((a) => a.status)).toEqual([403, 403, 403, 403, 403, 403, 403, 403]);
      expect((await api.get('/auth/me', { token })).body.roles).toEqual(['auditor']);
      const after = await api.get(`/billing/invoices/${invoice.id}`, { token: ada.token });
      expect(after.body.status).toBe('open');
    });
  });

  describe('API8 security misconfiguration', () => {
    it('sends security headers and no framework banner', async () => {
      const response = await fetch(deployment.urlFor('/products'));

      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
      expect(response.headers.get('x-frame-options')).toBe('SAMEORIGIN');
      expect(response.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
      expect(response.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(response.headers.get('x-powered-by')).toBeNull();
    });

    it('lets no cache keep tokens or personal data', async () => {
      const email = `cache-${Date.now()}@example.com`;
      const password = 'a long enough passphrase 7';
      await api.post('/auth/register', { body: { email, password } });
      const login = await api.post('/auth/login', { body: { email, password } });
      const me = await api.get('/auth/me', { token: login.body.accessToken });
      const refused = await api.get('/orders/not-a-uuid', { token: login.body.accessToken });

      for (const response of [login, me, refused]) {
        expect(response.headers.get('cache-control')).toBe('no-store');
      }
    });

    it('answers no cross-origin request when no origin is configured', async () => {
      const response = await fetch(deployment.urlFor('/orders'), {
        method: 'OPTIONS',
        headers: {
          origin: 'https://evil.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization',
        },
      });

      expect(response.headers.get('access-control-allow-origin')).toBeNull();
    });
    it('answers requests the HTTP parser refuses in the one error body, and stays up', async () => {
      for (const path of ['/orders', '/auth/login', '/billing/invoices']) {
        const url = new URL(deployment.urlFor(path));
        const unknownMethod = await rawExchange(url, `BREW ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
        const hugeHeaders = await rawExchange(
          url,
          `GET ${path} HTTP/1.1\r\nHost: x\r\nX-Filler: ${'a'.repeat(20_000)}\r\n\r\n`,
        );
        const brokenChunk = await rawExchange(
          url,
          `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
            `Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
        );

        for (const [answer, status] of [
          [unknownMethod, 400],
          [hugeHeaders, 431],
          [brokenChunk, 400],
        ] as const) {
          expectErrorBody(answer, status, /HPE_|FST_|Client Error/);
        }
        expect((await fetch(deployment.urlFor('/health/live'))).status).toBe(200);
      }
    });

    // Every shape's HTTP server comes from the same createHost, and this test waits out the 30 s
    // limit: it runs against the one shape that every machine has.
    if (shape === 'embedded')
      it('closes a connection whose body trickles in, with 408 in the one error body', async () => {
        const url = new URL(deployment.urlFor('/auth/login'));
        const started = Date.now();
        const answer = await rawExchange(
          url,
          'POST /auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
            'Content-Length: 1000\r\n\r\n{',
          { trickleEveryMs: 2_000 },
        );

        expect(answer.status).toBe(408);
        expect(answer.body).toEqual({
          statusCode: 408,
          error: 'Request Timeout',
          message: expect.any(String),
          correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
        });
        // 30 s to send a request; Node looks for late requests every 5 s.
        expect(Date.now() - started).toBeLessThan(45_000);
      }, 60_000);

    it('answers paths the router refuses in the one error body, without echoing them', async () => {
      for (const prefix of ['/orders', '/billing/invoices']) {
        const url = new URL(deployment.urlFor(prefix));
        for (const [path, status] of [
          [`${prefix}/%ZZ`, 400],
          [`${prefix}/%E0%A4%A`, 400],
          [`${prefix}/${'a'.repeat(5_000)}`, 414],
        ] as const) {
          const answer = await rawExchange(
            url,
            `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          );

          expectErrorBody(answer, status, /FST_|%ZZ|%A4|aaaa/);
        }
      }
    });
  });

  describe('API9 improper inventory management', () => {
    it('refuses every documented operation without a token unless it is listed as public', async () => {
      const unexpected: string[] = [];
      for (const base of deployment.baseUrls()) {
        const document: any = await (await fetch(`${base}/docs-json`)).json();
        for (const [path, operations] of Object.entries<Record<string, unknown>>(document.paths)) {
          for (const method of Object.keys(operations)) {
            const operation = `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`;
            const url = `${base}${path.replace(/\{\w+\}/g, randomUUID())}`;
            const response = await fetch(url, { method: method.toUpperCase() });
            const isPublic = PUBLIC_OPERATIONS.has(operation);
            if (isPublic ? response.status === 401 : response.status !== 401) {
              unexpected.push(`${operation} answered ${response.status}`);
            }
          }
        }
      }

      expect(unexpected).toEqual([]);
    });
  });

  if (shape !== 'embedded') {
    describe('API10 unsafe consumption of messages, and object level authorization over them', () => {
      let bus: ServiceImpersonator;

      beforeAll(async () => {
        bus = await ServiceImpersonator.connect(deployment);
      });

      afterAll(async () => {
        await bus?.close();
      });

      const actor = (customer: Customer) => ({ id: customer.id, roles: ['customer'] });
      const invoicesOf = async (orderId: string) =>
        (await api.get(`/billing/invoices?orderId=${orderId}`, { token: adminToken })).body;

      it('opens no invoice for an orders.created whose payload names another customer', async () => {
        const forged = randomUUID();
        const control = randomUUID();

        await bus.publish(
          'orders',
          'orders.created',
          { orderId: forged, customerId: bob.id, totalCents: 100, currency: 'EUR' },
          actor(ada),
        );
        await bus.publish(
          'orders',
          'orders.created',
          { orderId: control, customerId: bob.id, totalCents: 100, currency: 'EUR' },
          actor(bob),
        );

        await api.eventually(async () => ((await invoicesOf(control)).length ? true : undefined));
        expect(await invoicesOf(forged)).toEqual([]);
        await audited('message.refused', 'actor_not_owner', 'orders.created');
      });

      it('does not mark paid the order of another customer named in billing.invoice.paid', async () => {
        const bobsOrder = await placeOrder(bob.token);
        const control = await placeOrder(bob.token);
        const paidEvent = (orderId: string) => ({
          invoiceId: randomUUID(),
          orderId,
          customerId: bob.id,
          paidAt: new Date().toISOString(),
        });

        await bus.publish('billing', 'billing.invoice.paid', paidEvent(bobsOrder.id), actor(ada));
        await bus.publish('billing', 'billing.invoice.paid', paidEvent(control.id), actor(bob));

        await api.eventually(async () => {
          const current = await api.get(`/orders/${control.id}`, { token: bob.token });
          return current.body.status === 'paid' ? true : undefined;
        });
        const untouched = await api.get(`/orders/${bobsOrder.id}`, { token: bob.token });
        expect(untouched.body.status).toBe('pending_payment');
      });

      it("does not void another customer's invoice on a billing.invoice.void request", async () => {
        const order = await placeOrder(bob.token);
        const invoice = await api.invoiceFor(order.id, bob.token);

        await bus.request(
          'orders',
          'billing.invoice.void',
          { orderId: order.id, customerId: bob.id, totalCents: order.totalCents, currency: 'EUR' },
          actor(ada),
        );

        const after = await api.get(`/billing/invoices/${invoice.id}`, { token: bob.token });
        expect(after.body.status).toBe('open');
        await audited('message.refused', 'actor_not_owner', 'billing.invoice.void');
      });

      it('refuses a message signed by a service that may not send its type', async () => {
        const forged = randomUUID();
        const control = randomUUID();

        await bus.publish(
          'billing',
          'orders.created',
          { orderId: forged, customerId: bob.id, totalCents: 100, currency: 'EUR' },
          actor(bob),
        );
        await bus.publish(
          'orders',
          'orders.created',
          { orderId: control, customerId: bob.id, totalCents: 100, currency: 'EUR' },
          actor(bob),
        );

        await api.eventually(async () => ((await invoicesOf(control)).length ? true : undefined));
        expect(await invoicesOf(forged)).toEqual([]);
      });
    });
  }
});

describe.each(availableShapes())('rate limits, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;

  beforeAll(async () => {
    deployment = await Deployment.start(shape, {
      // High enough that the harness's health polls during a slow start never exhaust it.
      RATE_LIMIT_PER_IP: '400',
      RATE_LIMIT_PER_USER: '10',
      RATE_LIMIT_WINDOW_SECONDS: '60',
    });
    api = new Api(deployment);
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  it('limits each user, then each client IP, with 429 and Retry-After', async () => {
    const ada = await api.customer('ada');
    const statuses: number[] = [];
    for (let i = 0; i < 11; i++)
      statuses.push((await api.get('/orders', { token: ada.token })).status);

    expect(statuses.slice(0, 10)).toEqual(Array(10).fill(200));
    expect(statuses[10]).toBe(429);
    const limited = await api.get('/orders', { token: ada.token });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(limited.body).toEqual({ ...ERROR_SHAPE, statusCode: 429 });

    const bob = await api.customer('bob');
    expect((await api.get('/orders', { token: bob.token })).status).toBe(200);

    let status = 200;
    for (let i = 0; i < 500 && status !== 429; i++) status = (await api.get('/products')).status;
    expect(status).toBe(429);
    const anonymous = await api.get('/products');
    expect(anonymous.status).toBe(429);
    expect(Number(anonymous.headers.get('retry-after'))).toBeGreaterThan(0);

    // Swagger and unknown paths reach no Nest route, yet draw on the same budget.
    for (const path of ['/docs-json', '/docs', '/no-such-route']) {
      const response = await fetch(new URL(path, deployment.urlFor('/products')));
      expect([path, response.status]).toEqual([path, 429]);
      expect(Number(response.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(await response.json()).toEqual({ ...ERROR_SHAPE, statusCode: 429 });
    }
  });

  it('is not fooled by a forged X-Forwarded-For from a client that is not a trusted proxy', async () => {
    const forged = await api.get('/products', {
      headers: { 'x-forwarded-for': '198.51.100.23', 'x-real-ip': '198.51.100.23' },
    });

    expect(forged.status).toBe(429);
  });
});

if (availableShapes().includes('embedded')) {
  describe('rate limits behind a trusted proxy, embedded shape', () => {
    let deployment: Deployment;
    let api: Api;

    beforeAll(async () => {
      deployment = await Deployment.start('embedded', {
        RATE_LIMIT_PER_IP: '200',
        TRUSTED_PROXIES: '127.0.0.1',
      });
      api = new Api(deployment);
    }, 120_000);

    afterAll(async () => {
      await deployment?.stop();
    });

    it('counts each client named by the proxy on its own', async () => {
      const from = (ip: string) => api.get('/products', { headers: { 'x-forwarded-for': ip } });
      const first: number[] = [];
      for (let i = 0; i < 201; i++) first.push((await from('203.0.113.7')).status);

      expect(first).toEqual([...Array<number>(200).fill(200), 429]);
      expect((await from('203.0.113.8')).status).toBe(200);
      expect((await from('198.51.100.1, 203.0.113.7')).status).toBe(429);
    });
  });
}

/** The token with its claims replaced, keeping the original signature. */
function tamper(token: string, changes: object): string {
  const [header, payload, signature] = token.split('.');
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as object;
  return `${header}.${b64({ ...claims, ...changes })}.${signature}`;
}

/** A token signed by an attacker who also puts their public key in the header (`jwk`). */
function embeddedKey(publicKey: KeyObject, kid: string): string {
  const jwk = publicKey.export({ format: 'jwk' });
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'RS256', kid, jwk })}.${b64({ sub: randomUUID(), exp: now + 60 })}`;
  return `${input}.${sign('RSA-SHA256', Buffer.from(input), privateKey).toString('base64url')}`;
}

/** The classic key confusion: HS256, with the published RSA public key as the HMAC secret. */
async function hmacWithPublicKey(api: Api, kid: string, claims: object): Promise<string> {
  const jwks = await api.get('/.well-known/jwks.json');
  const jwk = jwks.body.keys.find((key: { kid: string }) => key.kid === kid);
  const pem = createPublicKey({ key: jwk, format: 'jwk' }).export({ type: 'spki', format: 'pem' });
  const input = `${b64({ alg: 'HS256', kid })}.${b64(claims)}`;
  return `${input}.${createHmac('sha256', pem).update(input).digest('base64url')}`;
}

/**
 * Sends raw bytes over a new connection and reads the one response the server writes before it
 * closes. With `trickleEveryMs`, one more byte of body follows at that interval until then.
 */
function rawExchange(
  url: URL,
  request: string,
  { trickleEveryMs }: { trickleEveryMs?: number } = {},
): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = connect(Number(url.port), url.hostname, () => socket.write(request));
    const trickle = trickleEveryMs ? setInterval(() => socket.write(' '), trickleEveryMs) : 0;
    const chunks: Buffer[] = [];
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer in 10 s')));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (error) => {
      clearInterval(trickle);
      reject(error);
    });
    socket.on('close', () => {
      clearInterval(trickle);
      const text = Buffer.concat(chunks).toString('utf8');
      const [head, body = ''] = text.split('\r\n\r\n');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0);
      try {
        resolve({ status, body: JSON.parse(body) as unknown });
      } catch {
        resolve({ status, body });
      }
    });
  });
}

/** The answer has `status` in the one error body, and none of the text `leaks` matches. */
function expectErrorBody(answer: { status: number; body: unknown }, status: number, leaks: RegExp) {
  expect(answer.status).toBe(status);
  expect(answer.body).toEqual({
    statusCode: status,
    error: expect.any(String),
    message: expect.any(String),
    correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
  });
  expect(JSON.stringify(answer.body)).not.toMatch(leaks);
}
