// Decorators of class-transformer and Nest read design metadata; every Nest process has this
// polyfill loaded by @nestjs/core, so a spec that imports only a DTO needs it too.
import 'reflect-metadata';

// Every suite runs in UTC, whatever the machine's zone, so dates print the same everywhere.
process.env.TZ = 'UTC';
