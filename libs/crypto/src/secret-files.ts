import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, normalize } from 'node:path';

import type { SecretsProvider } from './secrets-provider';

/** Raised when a secret the process needs is absent. Names the secret, never a value. */
export class MissingSecretError extends Error {
  constructor(
    readonly secret: string,
    hint: string,
  ) {
    super(`Missing secret "${secret}". ${hint}`);
    this.name = 'MissingSecretError';
  }
}

/**
 * Reads secrets from a directory, which is how Docker and Kubernetes secrets arrive.
 * Names are fixed relative paths chosen by the code, never taken from input.
 */
export class SecretFiles implements SecretsProvider {
  readonly source = 'files';

  constructor(readonly directory: string) {}

  has(name: string): boolean {
    return existsSync(this.pathOf(name));
  }

  read(name: string, hint = 'Run `npm run secrets:init` to create development secrets.'): string {
    const path = this.pathOf(name);
    if (!existsSync(path)) throw new MissingSecretError(name, `Expected it at ${path}. ${hint}`);
    return readFileSync(path, 'utf8');
  }

  describe(name: string): string {
    return `SECRETS_DIR (${this.pathOf(name)})`;
  }

  pathOf(name: string): string {
    const relative = normalize(name);
    if (isAbsolute(relative) || relative.startsWith('..')) {
      throw new Error('secret names are relative to SECRETS_DIR');
    }
    return join(this.directory, relative);
  }
}
