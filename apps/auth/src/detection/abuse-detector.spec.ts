import { jest } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { register } from 'prom-client';

import { type AuditRecord, type SecurityEvent, SecurityEvents } from '@portcullis/audit';
import { type DetectionSettings, RequestContext } from '@portcullis/core';

import { AbuseDetector, type AccountActions } from './abuse-detector';
import { type AlertRule, SecurityAlerts } from './security-alerts';

const MALLORY = '7d1f0a2b-3c4d-4e5f-8a6b-7c8d9e0f1a2b';
const ADA = '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f';
const START = Date.parse('2026-03-01T12:00:00Z');

const SETTINGS: DetectionSettings = {
  accessProbing: { threshold: 10, windowSeconds: 60 },
  messageRefusals: { threshold: 5, windowSeconds: 60 },
  maxTrackedSubjects: 100,
};

function deniedAccess(userId: string, second: number, overrides: Partial<AuditRecord> = {}) {
  return record({
    service: 'orders',
    type: 'access.denied',
    outcome: 'denied',
    reason: 'not_owner',
    actor: { userId, roles: ['customer'] },
    resource: { type: 'order', id: randomUUID() },
    time: new Date(START + second * 1000).toISOString(),
    ...overrides,
  });
}

function refusedMessage(sender: string | undefined, second: number): AuditRecord {
  return record({
    service: 'billing',
    type: 'message.refused',
    outcome: 'denied',
    reason: 'bad_signature',
    details: { messageType: 'orders.created', sender: sender ?? null, subject: 'evt.orders' },
    time: new Date(START + second * 1000).toISOString(),
  });
}

function record(fields: Omit<AuditRecord, 'id' | 'correlationId'>): AuditRecord {
  return { id: randomUUID(), correlationId: randomUUID(), ...fields };
}

/** A detector with the real alert recorder, whose records and revocations the test sees. */
function detector(settings = SETTINGS, revoke?: AccountActions['revokeAllSessions']) {
  const events = new SecurityEvents();
  const recorded: Array<SecurityEvent & { correlationId?: string }> = [];
  jest.spyOn(events, 'record').mockImplementation((event) => {
    recorded.push({ ...event, correlationId: RequestContext.correlationId() });
  });
  const revokeAllSessions = jest.fn(revoke ?? (() => Promise.resolve(2)));
  let now = START + 3600_000;
  const subject = new AbuseDetector(
    settings,
    new SecurityAlerts(events),
    { revokeAllSessions },
    () => now,
  );
  const alerts = () => recorded.filter((event) => event.type === 'security.alert');
  return { subject, alerts, revokeAllSessions, setNow: (time: number) => (now = time) };
}

async function alertCount(rule: AlertRule): Promise<number> {
  const metric = register.getSingleMetric('portcullis_security_alerts_total');
  const values = (await metric!.get()).values;
  return values.find((value) => value.labels.rule === rule)?.value ?? 0;
}

const seconds = (count: number, every = 1) => Array.from({ length: count }, (_, i) => i * every);

describe(AbuseDetector.name, () => {
  describe('a customer denied access to other customers’ objects', () => {
    it('loses every session, once, on the tenth denial within a minute', async () => {
      const { subject, revokeAllSessions, alerts } = detector();
      const probes = seconds(12).map((second) => deniedAccess(MALLORY, second));

      await subject.observe(probes.slice(0, 9));
      expect(revokeAllSessions).not.toHaveBeenCalled();
      await subject.observe(probes.slice(9));

      expect(revokeAllSessions).toHaveBeenCalledTimes(1);
      expect(revokeAllSessions).toHaveBeenCalledWith(MALLORY);
      expect(alerts()).toEqual([
        {
          type: 'security.alert',
          outcome: 'denied',
          reason: 'access.probing',
          resourceType: 'account',
          resourceId: MALLORY,
          details: { threshold: 10, windowSeconds: 60, action: 'sessions_revoked', sessions: 2 },
          correlationId: probes[9].correlationId,
        },
      ]);
    });

    it('keeps every session when the denials are spread over more than the window', async () => {
      const { subject, revokeAllSessions, alerts } = detector();

      await subject.observe(seconds(30, 7).map((second) => deniedAccess(MALLORY, second)));

      expect(revokeAllSessions).not.toHaveBeenCalled();
      expect(alerts()).toEqual([]);
    });

    it('counts each customer apart: nine denials each revoke nobody', async () => {
      const { subject, revokeAllSessions } = detector();
      const users = Array.from({ length: 20 }, () => randomUUID());

      await subject.observe(
        seconds(9).flatMap((second) => users.map((user) => deniedAccess(user, second))),
      );

      expect(revokeAllSessions).not.toHaveBeenCalled();
    });

    it('ignores denials without a user or an object, and ones that were allowed', async () => {
      const { subject, revokeAllSessions } = detector();
      const strays = seconds(20).flatMap((second) => [
        deniedAccess(MALLORY, second, { actor: undefined }),
        deniedAccess(MALLORY, second, { resource: undefined }),
        deniedAccess(MALLORY, second, { outcome: 'allowed' }),
        deniedAccess(MALLORY, second, { type: 'auth.login_failed' }),
      ]);

      await subject.observe(strays);

      expect(revokeAllSessions).not.toHaveBeenCalled();
    });

    it('revokes again only after ten more denials', async () => {
      const { subject, revokeAllSessions } = detector();

      await subject.observe(seconds(19).map((second) => deniedAccess(MALLORY, second)));
      expect(revokeAllSessions).toHaveBeenCalledTimes(1);
      await subject.observe([deniedAccess(MALLORY, 19)]);

      expect(revokeAllSessions).toHaveBeenCalledTimes(2);
    });

    it('counts a late batch at the times the services saw the denials', async () => {
      const { subject, revokeAllSessions } = detector();
      const anHourApartEach = seconds(10, 3600).map((second) => deniedAccess(MALLORY, second));

      await subject.observe(anHourApartEach);

      expect(revokeAllSessions).not.toHaveBeenCalled();
    });

    it('raises a failed alert and goes on with the batch when revoking fails', async () => {
      const { subject, alerts, revokeAllSessions } = detector(SETTINGS, () =>
        Promise.reject(new Error('database unavailable')),
      );

      await subject.observe([
        ...seconds(10).map((second) => deniedAccess(MALLORY, second)),
        ...seconds(10).map((second) => deniedAccess(ADA, second)),
      ]);

      expect(revokeAllSessions).toHaveBeenCalledTimes(2);
      expect(alerts().map((alert) => [alert.outcome, alert.resourceId])).toEqual([
        ['failed', MALLORY],
        ['failed', ADA],
      ]);
    });

    it('counts each alert in portcullis_security_alerts_total by rule', async () => {
      const { subject } = detector();
      const before = await alertCount('access.probing');

      await subject.observe(seconds(10).map((second) => deniedAccess(MALLORY, second)));

      expect(await alertCount('access.probing')).toBe(before + 1);
    });
  });

  describe('messages refused from one sender', () => {
    it('raise one alert when the fifth arrives within a minute', async () => {
      const { subject, alerts } = detector();

      await subject.observe(seconds(5).map((second) => refusedMessage('orders', second)));

      expect(alerts()).toEqual([
        expect.objectContaining({
          type: 'security.alert',
          outcome: 'allowed',
          reason: 'messages.refused',
          details: { sender: 'orders', threshold: 5, windowSeconds: 60, service: 'billing' },
        }),
      ]);
    });

    it('raise at most one alert per minute however long the flood lasts', async () => {
      const { subject, alerts } = detector();
      const tenPerSecondForThreeMinutes = seconds(1800).map((tenth) =>
        refusedMessage('orders', tenth / 10),
      );

      await subject.observe(tenPerSecondForThreeMinutes);

      expect(alerts()).toHaveLength(3);
    });

    it('count each claimed sender apart, and messages that claimed none together', async () => {
      const { subject, alerts } = detector();

      await subject.observe([
        ...seconds(4).map((second) => refusedMessage('orders', second)),
        ...seconds(4).map((second) => refusedMessage('billing', second)),
        ...seconds(5).map((second) => refusedMessage(undefined, second)),
      ]);

      expect(alerts().map((alert) => alert.details)).toEqual([
        { sender: undefined, threshold: 5, windowSeconds: 60, service: 'billing' },
      ]);
    });

    it('keep counts for a bounded number of senders', async () => {
      const { subject } = detector();

      await subject.observe(seconds(5000).map((i) => refusedMessage(`forged-${i}`, i / 100)));

      expect(subject.trackedSubjects().messageRefusals).toBeLessThanOrEqual(100);
    });
  });

  describe('alerts', () => {
    it('never count towards a rule, so an alert cannot cause another', async () => {
      const { subject, alerts, revokeAllSessions } = detector();
      const alertRecords = seconds(50).map((second) =>
        deniedAccess(MALLORY, second, {
          type: 'security.alert',
          details: { sender: 'orders' },
        }),
      );

      await subject.observe(alertRecords);

      expect(revokeAllSessions).not.toHaveBeenCalled();
      expect(alerts()).toEqual([]);
      expect(subject.trackedSubjects()).toEqual({ accessProbing: 0, messageRefusals: 0 });
    });

    it('take a record dated in the future as seen now, so it cannot push others out', async () => {
      const { subject, revokeAllSessions, setNow } = detector();
      setNow(START + 9000);
      const future = deniedAccess(MALLORY, 0, { time: '2099-01-01T00:00:00Z' });

      await subject.observe([future, ...seconds(9).map((second) => deniedAccess(MALLORY, second))]);

      expect(revokeAllSessions).toHaveBeenCalledTimes(1);
    });
  });
});
