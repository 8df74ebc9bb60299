import { MissingSecretError } from './secret-files';

/**
 * Where a process gets its secrets. Names are fixed relative paths chosen by the code
 * (`services/auth.key`, `data-keys.json`), never taken from input; values never reach a log
 * or an error message.
 */
export interface SecretsProvider {
  /** `files`, `environment`, `vault` or `layered`: shown in messages, never a value. */
  readonly source: string;
  has(name: string): boolean;
  /** The secret's text; throws {@link MissingSecretError} naming it when it is absent. */
  read(name: string, hint?: string): string;
  /** Where this provider looks for a secret, for the message that says it is missing. */
  describe(name: string): string;
  /** Fetches again what the provider holds in memory (Vault); files are read on every call. */
  refresh?(): Promise<void>;
}

const DEFAULT_HINT = 'Run `npm run secrets:init` to create development secrets.';

/**
 * The environment variable that carries a secret:
 * `data-keys.json` -> `PORTCULLIS_SECRET_DATA_KEYS_JSON`.
 */
export function environmentSecretName(name: string): string {
  return `PORTCULLIS_SECRET_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/**
 * Secrets from `PORTCULLIS_SECRET_<NAME>` variables, for development. The configuration
 * module collects them (nothing else reads the environment); they are visible to anything
 * that can read the process's environment, so production uses files or Vault.
 */
export class EnvironmentSecrets implements SecretsProvider {
  readonly source = 'environment';

  constructor(private readonly variables: Readonly<Record<string, string>>) {}

  has(name: string): boolean {
    return this.variables[environmentSecretName(name)] !== undefined;
  }

  read(name: string, hint = DEFAULT_HINT): string {
    const value = this.variables[environmentSecretName(name)];
    if (value === undefined)
      throw new MissingSecretError(name, `Expected it in ${this.describe(name)}. ${hint}`);
    return value;
  }

  describe(name: string): string {
    return `environment variable ${environmentSecretName(name)}`;
  }
}

/** Asks each provider in turn; the first that has a secret answers. */
export class LayeredSecrets implements SecretsProvider {
  readonly source: string;

  constructor(private readonly layers: readonly SecretsProvider[]) {
    this.source = layers.map((layer) => layer.source).join(', then ');
  }

  has(name: string): boolean {
    return this.layers.some((layer) => layer.has(name));
  }

  read(name: string, hint = DEFAULT_HINT): string {
    const layer = this.layers.find((candidate) => candidate.has(name));
    if (!layer) throw new MissingSecretError(name, `Looked in ${this.describe(name)}. ${hint}`);
    return layer.read(name, hint);
  }

  describe(name: string): string {
    return this.layers.map((layer) => layer.describe(name)).join(', ');
  }

  /** The source of the layer that answers for a secret, if any does. */
  sourceOf(name: string): string | undefined {
    return this.layers.find((layer) => layer.has(name))?.source;
  }

  async refresh(): Promise<void> {
    for (const layer of this.layers) await layer.refresh?.();
  }
}
