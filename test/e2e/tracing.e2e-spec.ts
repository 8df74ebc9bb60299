import { randomBytes, randomUUID } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';

interface AuditEvent {
  service: string;
  type: string;
  correlationId: string;
  traceparent?: string;
}

interface LogLine {
  correlationId?: string;
  traceparent?: string;
}

/** The JSON log lines of a process that belong to a trace. */
function linesOfTrace(stdout: string, traceId: string): LogLine[] {
  return stdout
    .split('\n')
    .filter((line) => line.includes(traceId))
    .map((line) => JSON.parse(line) as LogLine);
}

describe.each(availableShapes())('one order followed across services, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let adminToken: string;

  beforeAll(async () => {
    // Debug level, so that the handling of each message leaves a line in its service's log.
    deployment = await Deployment.start(shape, { LOG_LEVEL: 'debug' }, {}, { captureStdout: true });
    api = new Api(deployment);
    adminToken = await api.login(ADMIN.email, ADMIN.password);
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  it('carries the caller’s trace and correlation id into the logs and audit records of orders and billing', async () => {
    const customer = await api.customer('traced');
    const traceId = randomBytes(16).toString('hex');
    const correlationId = `trace-${randomUUID()}`;

    const placed = await api.post('/orders', {
      token: customer.token,
      body: { items: [{ sku: 'KEY-001', quantity: 1 }] },
      headers: {
        traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01`,
        'x-correlation-id': correlationId,
        'idempotency-key': randomUUID(),
      },
    });
    expect(placed.status).toBe(201);
    expect(placed.headers.get('traceparent')).toMatch(
      new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`),
    );

    const records = await api.eventually(async () => {
      const response = await api.get(`/audit/events?correlationId=${correlationId}&limit=100`, {
        token: adminToken,
      });
      const items = response.body.items as AuditEvent[];
      const services = new Set(items.map((record) => record.service));
      return services.has('orders') && services.has('billing') ? items : undefined;
    }, 30_000);
    for (const record of records) {
      expect(record.traceparent).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    }
    expect(records.map((record) => record.type)).toEqual(
      expect.arrayContaining(['order.created', 'message.handled']),
    );

    const processes = shape === 'split' ? ['orders', 'billing'] : ['platform'];
    for (const process of processes) {
      const lines = await api.eventually(() => {
        const found = linesOfTrace(deployment.stdout(process), traceId);
        return Promise.resolve(found.length > 0 ? found : undefined);
      }, 15_000);
      for (const line of lines) expect(line.correlationId).toBe(correlationId);
    }
  });
});
