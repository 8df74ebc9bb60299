import {
  type SecretSourceOptions,
  type VaultOptions,
  knownSecretNames,
  readVaultToken,
} from '@portcullis/crypto';

import type { AppConfig } from '../config/app-config';
import { SERVICE_NAMES } from '../config/service-name';

/** Where this deployment keeps its secrets, from the validated configuration. */
export function secretSourceOptions(config: AppConfig): SecretSourceOptions {
  return {
    directory: config.secretsDir,
    environment: config.environmentSecrets,
    vault: vaultOptions(config),
    names: knownSecretNames(SERVICE_NAMES),
  };
}

/** Vault connection settings with the token resolved (read from its file if need be). */
export function vaultOptions(config: AppConfig): VaultOptions | undefined {
  const vault = config.vault;
  if (!vault) return undefined;
  return {
    address: vault.address,
    token: vault.token ?? readVaultToken(vault.tokenFile!),
    namespace: vault.namespace,
    kvMount: vault.kvMount,
    kvPrefix: vault.kvPrefix,
    transitMount: vault.transitMount,
    transitKey: vault.transitKey,
  };
}
