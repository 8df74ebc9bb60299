export * from './access-token.strategy';
export * from './access.guard';
export * from './decorators';
export * from './ownership';
export * from './security.module';
export * from './token-key-store';
export * from './host-modules';
