export * from './audit.module';
export * from './security-event';
export * from './security-events.service';
export * from './audit-record';
