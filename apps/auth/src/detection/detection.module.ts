import { Module } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';

import { AUDIT_OBSERVERS, type AuditObserver } from '@portcullis/audit';
import { APP_CONFIG, type AppConfig } from '@portcullis/core';

import { SessionsService } from '../tokens/sessions.service';
import { AbuseDetector } from './abuse-detector';
import { SecurityAlerts } from './security-alerts';

/**
 * Abuse detection: the rules that read the audit trail (registered as an audit observer) and
 * the alerts that every rule raises, including those raised by the login limiter and refresh
 * rotation as they happen.
 */
@Module({
  providers: [
    SecurityAlerts,
    {
      provide: AUDIT_OBSERVERS,
      inject: [APP_CONFIG, SecurityAlerts, ModuleRef],
      useFactory: (config: AppConfig, alerts: SecurityAlerts, modules: ModuleRef) => {
        // The auth module imports this one, so its sessions service is looked up when a rule
        // acts rather than imported back, which would make a cycle of modules.
        const detector = new AbuseDetector(config.detection, alerts, {
          revokeAllSessions: (accountId) =>
            modules.get(SessionsService, { strict: false }).revokeSessions(accountId, 'abuse'),
        });
        return [detector] satisfies AuditObserver[];
      },
    },
  ],
  exports: [SecurityAlerts, AUDIT_OBSERVERS],
})
export class DetectionModule {}
