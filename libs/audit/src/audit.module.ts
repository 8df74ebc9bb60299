import { Global, Module } from '@nestjs/common';

import { SecurityEvents } from './security-events.service';

/** Process-wide recorder of security events. */
@Global()
@Module({ providers: [SecurityEvents], exports: [SecurityEvents] })
export class AuditModule {}
