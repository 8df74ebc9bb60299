import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

const ERROR_SHAPE = {
  statusCode: expect.any(Number),
  error: expect.any(String),
  message: expect.anything(),
  correlationId: expect.any(String),
};

const PASSWORD = 'a long enough password 42';

/** The sum of every sample of a metric whose labels include `labels` (0 when there is none). */
function sample(metrics: string, name: string, labels: Record<string, string>): number {
  const wanted = Object.entries(labels).map(([key, value]) => `${key}="${value}"`);
  let sum = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const labelText = line.includes('{')
      ? line.slice(line.indexOf('{') + 1, line.indexOf('}'))
      : '';
    if (wanted.every((pair) => labelText.split(',').includes(pair))) {
      sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return sum;
}

describe.each(availableShapes())('observability, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let scrapeToken: string;
  let adminToken: string;
  let customer: { id: string; email: string; token: string };

  beforeAll(async () => {
    deployment = await Deployment.start(shape, { LOG_LEVEL: 'log' }, {}, { captureStdout: true });
    api = new Api(deployment);
    scrapeToken = readFileSync(join(deployment.secretsDir, 'metrics.token'), 'utf8').trim();
    adminToken = await api.login(ADMIN.email, ADMIN.password);
    customer = await api.customer('observed');
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  /** The metrics text of the process at `base`, read with the scrape token. */
  async function scrape(base: string): Promise<string> {
    const response = await fetch(`${base}/metrics`, {
      headers: { authorization: `Bearer ${scrapeToken}` },
    });
    expect(response.status).toBe(200);
    return response.text();
  }

  describe('health', () => {
    it('answers liveness and readiness on every process, without a token', async () => {
      for (const base of deployment.baseUrls()) {
        const live = await fetch(`${base}/health/live`);
        const ready = await fetch(`${base}/health/ready`);
        const legacy = await fetch(`${base}/health`);

        expect(live.status).toBe(200);
        expect(await live.json()).toEqual({ status: 'ok', checks: { process: 'up' } });
        expect(ready.status).toBe(200);
        const readiness = (await ready.json()) as { status: string; checks: object };
        expect(readiness.status).toBe('ok');
        expect(Object.keys(readiness.checks)).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^database:/),
            expect.stringMatching(/^bus:/),
          ]),
        );
        expect(legacy.status).toBe(200);
        expect(await legacy.json()).toEqual(readiness);
      }
    });
  });

  describe('GET /metrics', () => {
    it('refuses an anonymous caller with 401 and a customer with 403 on every process', async () => {
      for (const base of deployment.baseUrls()) {
        const anonymous = await fetch(`${base}/metrics`);
        const asCustomer = await fetch(`${base}/metrics`, {
          headers: { authorization: `Bearer ${customer.token}` },
        });
        const wrongScrapeToken = await fetch(`${base}/metrics`, {
          headers: { authorization: `Bearer ${scrapeToken.slice(0, -1)}x` },
        });

        expect(anonymous.status).toBe(401);
        expect(await anonymous.json()).toEqual({ ...ERROR_SHAPE, statusCode: 401 });
        expect(asCustomer.status).toBe(403);
        expect(await asCustomer.json()).toEqual({ ...ERROR_SHAPE, statusCode: 403 });
        expect(wrongScrapeToken.status).toBe(401);
      }
    });

    it('serves Prometheus text to the scrape token and to an admin on every process', async () => {
      for (const base of deployment.baseUrls()) {
        const scraped = await fetch(`${base}/metrics`, {
          headers: { authorization: `Bearer ${scrapeToken}` },
        });
        const asAdmin = await fetch(`${base}/metrics`, {
          headers: { authorization: `Bearer ${adminToken}` },
        });

        expect(scraped.status).toBe(200);
        expect(scraped.headers.get('content-type')).toMatch(/^text\/plain/);
        const text = await scraped.text();
        expect(text).toContain('# TYPE portcullis_http_request_duration_seconds histogram');
        expect(text).toContain('process_cpu_user_seconds_total');
        expect(text).toContain('portcullis_audit_records_appended_total');
        expect(text).toMatch(/portcullis_outbox_pending_events\{service="\w+"\} \d+/);
        expect(asAdmin.status).toBe(200);
      }
    });

    it('counts a refused token as a security event and times the request by route', async () => {
      const path = '/orders';
      const base = new URL(deployment.urlFor(path)).origin;
      const rejected = { type: 'auth.token_rejected', outcome: 'denied' };
      const timed = { method: 'GET', route: '/orders', status: '401' };
      const before = await scrape(base);

      const refused = await api.get(path, { token: 'not.a.token' });

      expect(refused.status).toBe(401);
      const after = await scrape(base);
      const count = 'portcullis_http_request_duration_seconds_count';
      expect(sample(after, 'portcullis_security_events_total', rejected)).toBe(
        sample(before, 'portcullis_security_events_total', rejected) + 1,
      );
      expect(sample(after, count, timed)).toBe(sample(before, count, timed) + 1);
      expect(after).not.toContain('not.a.token');
    });

    it('counts token cache hits for a token seen before', async () => {
      const base = new URL(deployment.urlFor('/orders')).origin;
      await api.get('/orders', { token: customer.token });
      const before = sample(await scrape(base), 'portcullis_token_cache_hits_total', {});

      await api.get('/orders', { token: customer.token });

      expect(sample(await scrape(base), 'portcullis_token_cache_hits_total', {})).toBe(before + 1);
    });
  });

  describe('trace context and request logs', () => {
    it("continues the caller's trace and logs the request with its ids and no secrets", async () => {
      const traceId = randomBytes(16).toString('hex');
      const callerSpan = randomBytes(8).toString('hex');
      const correlationId = `observed-${randomBytes(6).toString('hex')}`;
      const login = await api.post('/auth/login', {
        body: { email: customer.email, password: PASSWORD },
      });
      expect(login.status).toBe(200);

      const response = await api.get('/auth/me', {
        token: login.body.accessToken,
        headers: {
          traceparent: `00-${traceId}-${callerSpan}-01`,
          'x-correlation-id': correlationId,
        },
      });

      expect(response.status).toBe(200);
      expect(response.headers.get('x-correlation-id')).toBe(correlationId);
      const returned = response.headers.get('traceparent') ?? '';
      expect(returned).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
      expect(returned).not.toContain(callerSpan);

      const app = deployment.appFor('/auth/me');
      const line = await api.eventually(() => {
        const found = deployment
          .stdout(app)
          .split('\n')
          .filter((text) => text.includes(correlationId))
          .map((text) => JSON.parse(text) as Record<string, unknown>)
          .find((entry) => entry.route === '/auth/me');
        return Promise.resolve(found);
      }, 5_000);
      expect(line).toMatchObject({
        level: 'info',
        msg: 'request',
        method: 'GET',
        route: '/auth/me',
        status: 200,
        correlationId,
        traceparent: returned,
        userId: customer.id,
        service: shape === 'split' ? 'auth' : 'platform',
        durationMs: expect.any(Number),
      });

      const logs = deployment.baseUrls().length > 1 ? ['auth', 'orders', 'billing'] : ['platform'];
      const written = logs.map((name) => deployment.stdout(name)).join('\n');
      expect(written).not.toMatch(/authorization/i);
      expect(written).not.toContain(PASSWORD);
      expect(written).not.toContain(ADMIN.password);
      expect(written).not.toContain(login.body.accessToken);
      expect(written).not.toContain(login.body.refreshToken);
      expect(written).not.toContain(customer.token);
      expect(written).not.toContain(scrapeToken);
    });

    it('starts a new trace when the caller sends an invalid traceparent', async () => {
      const invalid = `00-${'0'.repeat(32)}-${randomBytes(8).toString('hex')}-01`;

      const response = await api.get('/products', { headers: { traceparent: invalid } });

      const returned = response.headers.get('traceparent') ?? '';
      expect(returned).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
      expect(returned.slice(3, 35)).not.toBe('0'.repeat(32));
    });
  });
});
