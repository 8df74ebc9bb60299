export * from './audit-payloads';
export * from './message-types';
export * from './nats-permissions';
export * from './nats-server-config';
export * from './payloads';
export * from './roles';
