import type { DynamicModule, Type } from '@nestjs/common';

import { AuditModule } from '@portcullis/audit';
import type { ServiceName } from '@portcullis/core';
import { MessagingModule } from '@portcullis/messaging';

import { SecurityModule } from './security.module';

/**
 * The cross-cutting modules every Portcullis process runs, whatever apps it hosts: the audit
 * sink, signed messaging and the global guard. `keyRequester` is the hosted service that
 * fetches token keys from auth.
 */
export function securedHostModules(
  keyRequester: ServiceName,
): Array<Type | DynamicModule | Promise<DynamicModule>> {
  return [AuditModule, MessagingModule.forRoot(), SecurityModule.forRoot(keyRequester)];
}
