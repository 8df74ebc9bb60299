import { readFileSync } from 'node:fs';

import { SECRET_NAMES } from './development-secrets';
import { type KeyEncryptionKeys, KeyringKeyEncryptionKeys } from './key-encryption-keys';
import { SecretFiles } from './secret-files';
import { EnvironmentSecrets, LayeredSecrets, type SecretsProvider } from './secrets-provider';
import { VaultClient, type VaultOptions, VaultSecrets, VaultTransitKeys } from './vault';

/** Where a process takes its secrets from; built from the validated configuration. */
export interface SecretSourceOptions {
  /** `SECRETS_DIR`: always consulted, last. */
  readonly directory: string;
  /** `PORTCULLIS_SECRET_<NAME>` variables (development), consulted first. */
  readonly environment?: Readonly<Record<string, string>>;
  /** Vault, when `VAULT_ADDR` is set: KV between the environment and the files. */
  readonly vault?: VaultOptions;
  /** The secrets fetched from Vault KV at start-up (the code reads secrets synchronously). */
  readonly names: readonly string[];
}

/**
 * The process's secrets: environment variables first, then Vault KV, then `SECRETS_DIR`.
 * With neither of the first two configured, simply the files.
 */
export async function openSecrets(options: SecretSourceOptions): Promise<SecretsProvider> {
  const layers: SecretsProvider[] = [];
  if (options.environment && Object.keys(options.environment).length > 0) {
    layers.push(new EnvironmentSecrets(options.environment));
  }
  if (options.vault) {
    layers.push(await VaultSecrets.load(new VaultClient(options.vault), options.names));
  }
  const files = new SecretFiles(options.directory);
  return layers.length === 0 ? files : new LayeredSecrets([...layers, files]);
}

/**
 * The key-encryption keys of field encryption: Vault transit when Vault is configured,
 * otherwise the `data-keys.json` keyring, read again on every refresh.
 */
export async function openKeyEncryptionKeys(
  secrets: SecretsProvider,
  vault?: VaultOptions,
): Promise<KeyEncryptionKeys> {
  if (vault) {
    return VaultTransitKeys.create(new VaultClient(vault), vault.transitMount, vault.transitKey);
  }
  return KeyringKeyEncryptionKeys.create(
    () => secrets.read(SECRET_NAMES.dataKeys),
    SECRET_NAMES.dataKeys,
  );
}

/** Reads a Vault token from a file (as Vault Agent writes it), without its trailing newline. */
export function readVaultToken(path: string): string {
  return readFileSync(path, 'utf8').trim();
}
