// class-transformer keeps the `@Type` decorators' metadata in a singleton that its package entry
// does not re-export; its types ship beside the CommonJS build.
declare module 'class-transformer/cjs/storage' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage';
}
