import { describe, expect, it } from '@jest/globals';

import { buildAuditRecord } from './audit-record-builder';
import { REDACTED, redactDetails } from './redaction';

describe(redactDetails.name, () => {
  it('withholds tokens, passwords, keys, authorization, cookies, signatures and card data', () => {
    const redacted = redactDetails({
      accessToken: 'abc',
      refresh_token: 'def',
      paymentToken: 'tok_visa',
      password: 'hunter2 hunter2',
      clientSecret: 's',
      privateKey: 'k',
      Authorization: 'Basic x',
      cookie: 'session=1',
      signature: 'sig',
      cardNumber: '4242424242424242',
      paymentMethod: 'tok_visa',
    });

    expect(Object.values(redacted ?? {})).toEqual(Array(11).fill(REDACTED));
  });

  it('withholds bearer credentials and JWTs whatever field holds them', () => {
    expect(
      redactDetails({
        note: 'Bearer abc.def',
        header: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln',
      }),
    ).toEqual({ header: REDACTED, note: REDACTED });
  });

  it('keeps plain facts, drops absent values and sorts the keys', () => {
    expect(
      redactDetails({ route: '/orders', status: 201, orderId: 'o-1', skipped: undefined }),
    ).toEqual({
      orderId: 'o-1',
      route: '/orders',
      status: 201,
    });
  });
});

describe(buildAuditRecord.name, () => {
  const context = {
    correlationId: 'corr-9',
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
    actor: { id: 'u-1', roles: ['customer'], sessionId: 's-1' },
    clientIp: '10.0.0.9',
  };

  it('completes an event from the request context', () => {
    const record = buildAuditRecord(
      { type: 'order.created', outcome: 'allowed', resourceType: 'order', resourceId: 'o-1' },
      'orders',
      context,
      new Date('2026-12-04T10:00:00Z'),
    );

    expect(record).toMatchObject({
      time: '2026-12-04T10:00:00.000Z',
      service: 'orders',
      actor: { userId: 'u-1', roles: ['customer'], sessionId: 's-1', clientIp: '10.0.0.9' },
      resource: { type: 'order', id: 'o-1' },
      correlationId: 'corr-9',
      traceparent: context.traceparent,
    });
  });

  it('does not lend the session of the caller to another named actor', () => {
    const record = buildAuditRecord(
      { type: 'auth.login_failed', outcome: 'denied', actorId: 'u-2' },
      'auth',
      context,
    );

    expect(record.actor).toEqual({
      userId: 'u-2',
      roles: undefined,
      sessionId: undefined,
      clientIp: '10.0.0.9',
    });
  });

  it('never carries a secret in its details', () => {
    const record = buildAuditRecord(
      { type: 'auth.refresh', outcome: 'allowed', details: { refreshToken: 'r-123', reason: 'x' } },
      'auth',
      context,
    );

    expect(JSON.stringify(record)).not.toContain('r-123');
  });

  it('keeps nothing a database could refuse: control characters and lone surrogates', () => {
    const record = buildAuditRecord(
      {
        type: 'http.request',
        outcome: 'denied',
        resourceType: 'orders',
        resourceId: '\u0000a\u001fb\ud800',
        reason: 'bad\u0000',
        details: { route: '/orders/\u0000/cancel', note: 'ok\udc00' },
      },
      'orders',
      context,
    );

    expect(record.resource?.id).toBe('\ufffda\ufffdb\ufffd');
    expect(record.reason).toBe('bad\ufffd');
    expect(record.details).toEqual({ route: '/orders/\ufffd/cancel', note: 'ok\ufffd' });
    expect(JSON.stringify(record)).not.toMatch(/\\u0000|\\ud800|\\udc00/);
  });

  it('keeps a well-formed pair of surrogates', () => {
    const record = buildAuditRecord(
      { type: 'http.request', outcome: 'allowed', reason: 'caf\u00e9 \ud83d\ude00' },
      'orders',
      context,
    );

    expect(record.reason).toBe('caf\u00e9 \ud83d\ude00');
  });
});
