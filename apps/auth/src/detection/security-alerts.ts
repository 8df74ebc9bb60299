import { Injectable } from '@nestjs/common';
import { Counter, register } from 'prom-client';

import { type SecurityEvent, SecurityEvents, type SecurityOutcome } from '@portcullis/audit';

/** The rules that raise alerts; each is the `reason` of its `security.alert` records. */
export const ALERT_RULES = [
  'login.brute_force',
  'refresh.reuse',
  'access.probing',
  'messages.refused',
] as const;
export type AlertRule = (typeof ALERT_RULES)[number];

/** The audit record type of every alert. Rules never count these. */
export const SECURITY_ALERT = 'security.alert';

const ALERTS_METRIC = 'portcullis_security_alerts_total';

/**
 * One alert. `outcome` is `denied` when the rule shut the subject out (a lockout, revoked
 * sessions), `allowed` when it only reports, and `failed` when its action failed.
 */
export interface SecurityAlert {
  readonly rule: AlertRule;
  readonly outcome: SecurityOutcome;
  readonly accountId?: string;
  readonly clientIp?: string;
  readonly details?: SecurityEvent['details'];
}

/**
 * Raises alerts: each is a `security.alert` audit record whose reason is the rule, and a count
 * in `portcullis_security_alerts_total{rule}`.
 */
@Injectable()
export class SecurityAlerts {
  private readonly raised = alertsCounter();

  constructor(private readonly events: SecurityEvents) {}

  raise(alert: SecurityAlert): void {
    this.events.record({
      type: SECURITY_ALERT,
      outcome: alert.outcome,
      reason: alert.rule,
      clientIp: alert.clientIp,
      resourceType: alert.accountId ? 'account' : undefined,
      resourceId: alert.accountId,
      details: alert.details,
    });
    this.raised.inc({ rule: alert.rule });
  }
}

/** The process's one counter in prom-client's default registry, every rule starting at 0. */
function alertsCounter(): Counter<'rule'> {
  const existing = register.getSingleMetric(ALERTS_METRIC);
  if (existing) return existing as Counter<'rule'>;
  const counter = new Counter({
    name: ALERTS_METRIC,
    help: 'Security alerts raised by the detection rules, by rule.',
    labelNames: ['rule'] as const,
  });
  for (const rule of ALERT_RULES) counter.inc({ rule }, 0);
  return counter;
}
