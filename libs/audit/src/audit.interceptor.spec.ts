import { describe, expect, it } from '@jest/globals';

import { outcomeOfStatus, resourceOfRoute } from './audit.interceptor';
import { serviceOfPath } from './service-of-path';

describe(outcomeOfStatus.name, () => {
  it('calls success allowed, refusals of the caller denied and the rest failed', () => {
    expect([200, 201, 204, 401, 403, 404, 429, 400, 402, 409, 500].map(outcomeOfStatus)).toEqual([
      'allowed',
      'allowed',
      'allowed',
      'denied',
      'denied',
      'denied',
      'denied',
      'failed',
      'failed',
      'failed',
      'failed',
    ]);
  });
});

describe(resourceOfRoute.name, () => {
  it('takes the static segments before the id parameter as the type', () => {
    expect(resourceOfRoute('/billing/invoices/:id/pay', { id: 'i-1' })).toEqual({
      resourceType: 'billing.invoices',
      resourceId: 'i-1',
    });
  });

  it('takes the id of a created object when the route has none', () => {
    expect(resourceOfRoute('/orders', {}, { id: 'o-1', status: 'pending_payment' })).toEqual({
      resourceType: 'orders',
      resourceId: 'o-1',
    });
  });

  it('names no resource when no id is known', () => {
    expect(resourceOfRoute('/auth/logout', {}, undefined)).toEqual({});
  });
});

describe(serviceOfPath.name, () => {
  it('finds the service that owns a route in the one-process shape', () => {
    expect(
      [
        '/auth/login',
        '/audit/events',
        '/orders/1',
        '/products',
        '/billing/invoices',
        '/health',
      ].map(serviceOfPath),
    ).toEqual(['auth', 'auth', 'orders', 'orders', 'billing', undefined]);
  });
});
