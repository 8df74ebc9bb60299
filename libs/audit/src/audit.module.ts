import { Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';

import { AuditInterceptor } from './audit.interceptor';
import { SecurityEvents } from './security-events.service';

/**
 * Process-wide recorder of security decisions and changes, with the interceptor that records
 * every state-changing HTTP request of every app the process hosts.
 */
@Global()
@Module({
  providers: [SecurityEvents, { provide: APP_INTERCEPTOR, useClass: AuditInterceptor }],
  exports: [SecurityEvents],
})
export class AuditModule {}
