export * from './development-certificates';
export * from './development-secrets';
export * from './key-ids';
export * from './secret-files';
export * from './secret-box';
