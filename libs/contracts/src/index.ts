export * from './message-types';
export * from './payloads';
export * from './roles';
