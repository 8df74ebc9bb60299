import { type DataKey, DataKeyError, type KeyEncryptionKeys } from './key-encryption-keys';
import { MissingSecretError } from './secret-files';
import type { SecretsProvider } from './secrets-provider';

/** How to reach HashiCorp Vault, from `VAULT_*` settings. */
export interface VaultOptions {
  /** e.g. `https://vault.internal:8200`. */
  readonly address: string;
  readonly token: string;
  /** Vault Enterprise namespace, sent as `X-Vault-Namespace`. */
  readonly namespace?: string;
  /** KV version 2 mount holding secrets (default `secret`). */
  readonly kvMount: string;
  /** Folder under the KV mount: `<prefix>/<secret name>`, value in the field `value`. */
  readonly kvPrefix: string;
  /** Transit mount (default `transit`) and the key that wraps data keys. */
  readonly transitMount: string;
  readonly transitKey: string;
  readonly timeoutMs?: number;
}

/** Raised when Vault cannot be reached or refuses a call. Names the call, never a value. */
export class VaultError extends Error {
  constructor(
    readonly status: number,
    readonly operation: string,
  ) {
    super(
      status === 0
        ? `Vault did not answer ${operation}`
        : `Vault answered ${status} to ${operation}`,
    );
    this.name = 'VaultError';
  }
}

/** A minimal client of Vault's HTTP API (token auth), over the built-in fetch. */
export class VaultClient {
  private readonly base: string;

  constructor(private readonly options: VaultOptions) {
    this.base = options.address.replace(/\/+$/, '');
  }

  get kvMount(): string {
    return this.options.kvMount;
  }

  get kvPrefix(): string {
    return this.options.kvPrefix;
  }

  /** Calls `/v1/<path>`. Resolves to undefined on 404; throws {@link VaultError} otherwise. */
  async call<T>(method: 'GET' | 'POST', path: string, body?: object): Promise<T | undefined> {
    const operation = `${method} /v1/${path}`;
    const headers: Record<string, string> = { 'x-vault-token': this.options.token };
    if (this.options.namespace) headers['x-vault-namespace'] = this.options.namespace;
    if (body) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(`${this.base}/v1/${path}`, {
        method,
        headers,
        body: body ? JSON.stringify(body) : undefined,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5000),
        redirect: 'error',
      });
    } catch {
      throw new VaultError(0, operation);
    }
    if (response.status === 404) {
      await response.body?.cancel();
      return undefined;
    }
    if (!response.ok) {
      await response.body?.cancel();
      throw new VaultError(response.status, operation);
    }
    return response.status === 204 ? ({} as T) : ((await response.json()) as T);
  }
}

/** Builds `a/b/c` from path segments, each URL-encoded. */
export function vaultPath(...segments: string[]): string {
  return segments
    .flatMap((segment) => segment.split('/'))
    .filter((part) => part !== '')
    .map(encodeURIComponent)
    .join('/');
}

interface KvReadResponse {
  data?: { data?: { value?: unknown } };
}

/**
 * Secrets from Vault's KV version 2 engine: `<kvMount>/data/<kvPrefix>/<name>`, field
 * `value`. The code reads secrets synchronously, so the named secrets are fetched at start-up
 * and again on {@link refresh}; one that Vault does not hold is absent (another layer may).
 */
export class VaultSecrets implements SecretsProvider {
  readonly source = 'vault';
  private values = new Map<string, string>();

  private constructor(
    private readonly client: VaultClient,
    private readonly names: readonly string[],
  ) {}

  static async load(client: VaultClient, names: readonly string[]): Promise<VaultSecrets> {
    const secrets = new VaultSecrets(client, names);
    await secrets.refresh();
    return secrets;
  }

  has(name: string): boolean {
    return this.values.has(name);
  }

  read(name: string, hint = ''): string {
    const value = this.values.get(name);
    if (value === undefined) {
      throw new MissingSecretError(name, `Expected it in ${this.describe(name)}. ${hint}`);
    }
    return value;
  }

  describe(name: string): string {
    return `Vault KV ${vaultPath(this.client.kvMount, this.client.kvPrefix, name)}`;
  }

  async refresh(): Promise<void> {
    const values = new Map<string, string>();
    for (const name of this.names) {
      const path = vaultPath(this.client.kvMount, 'data', this.client.kvPrefix, name);
      const response = await this.client.call<KvReadResponse>('GET', path);
      const value = response?.data?.data?.value;
      if (typeof value === 'string') values.set(name, value);
    }
    this.values = values;
  }
}

interface TransitKeyResponse {
  data?: {
    latest_version?: number;
    min_decryption_version?: number;
    keys?: Record<string, number | string>;
  };
}

interface TransitDataKeyResponse {
  data?: { plaintext?: string; ciphertext?: string };
}

interface TransitDecryptResponse {
  data?: { plaintext?: string };
}

/**
 * KEKs kept in Vault's transit engine: data keys come from `datakey/plaintext/<key>` and are
 * unwrapped with `decrypt/<key>`, so the KEK never leaves Vault. Rotation and the minimum
 * decryption version are Vault's own (`keys/<key>/rotate`, `keys/<key>/config`).
 */
export class VaultTransitKeys implements KeyEncryptionKeys {
  readonly kind = 'vault-transit';
  private latest = 0;
  private minimum = 1;
  private created = new Map<number, Date>();

  private constructor(
    private readonly client: VaultClient,
    private readonly mount: string,
    private readonly key: string,
  ) {}

  static async create(client: VaultClient, mount: string, key: string): Promise<VaultTransitKeys> {
    const keys = new VaultTransitKeys(client, mount, key);
    await keys.refresh();
    return keys;
  }

  currentVersion(): number {
    return this.latest;
  }

  minDecryptVersion(): number {
    return this.minimum;
  }

  versionCreatedAt(version: number): Date | undefined {
    return this.created.get(version);
  }

  async refresh(): Promise<void> {
    const response = await this.client.call<TransitKeyResponse>(
      'GET',
      vaultPath(this.mount, 'keys', this.key),
    );
    const latest = response?.data?.latest_version;
    if (!response || !Number.isInteger(latest) || (latest as number) < 1) {
      throw new Error(`Vault transit key ${vaultPath(this.mount, 'keys', this.key)} not found`);
    }
    this.latest = latest as number;
    this.minimum = response.data?.min_decryption_version ?? 1;
    this.created = new Map(
      Object.entries(response.data?.keys ?? {}).map(([version, time]) => [
        Number(version),
        new Date(typeof time === 'number' ? time * 1000 : time),
      ]),
    );
  }

  async generateDataKey(): Promise<DataKey> {
    const response = await this.client.call<TransitDataKeyResponse>(
      'POST',
      vaultPath(this.mount, 'datakey', 'plaintext', this.key),
      { bits: 256 },
    );
    const plaintext = Buffer.from(response?.data?.plaintext ?? '', 'base64');
    const ciphertext = response?.data?.ciphertext ?? '';
    const version = transitVersion(ciphertext);
    if (plaintext.length !== 32 || version === undefined) {
      throw new Error('Vault transit returned no usable data key');
    }
    if (version > this.latest) this.latest = version;
    return { version, plaintext, wrapped: Buffer.from(ciphertext, 'utf8') };
  }

  async unwrapDataKey(version: number, wrapped: Buffer): Promise<Buffer> {
    const ciphertext = wrapped.toString('utf8');
    if (transitVersion(ciphertext) !== version) throw new DataKeyError('version mismatch');
    let response: TransitDecryptResponse | undefined;
    try {
      response = await this.client.call<TransitDecryptResponse>(
        'POST',
        vaultPath(this.mount, 'decrypt', this.key),
        { ciphertext },
      );
    } catch (error) {
      // 400: Vault refused the ciphertext (altered, or below min_decryption_version).
      if (error instanceof VaultError && error.status === 400) {
        throw new DataKeyError('refused by Vault');
      }
      throw error;
    }
    const key = Buffer.from(response?.data?.plaintext ?? '', 'base64');
    if (key.length !== 32) throw new DataKeyError('not a 256-bit key');
    return key;
  }

  /** Adds a KEK version in Vault; it becomes the one new data keys are wrapped with. */
  async rotate(): Promise<void> {
    await this.client.call('POST', vaultPath(this.mount, 'keys', this.key, 'rotate'), {});
    await this.refresh();
  }

  /** Sets Vault's `min_decryption_version`: older versions stop decrypting. */
  async retireBelow(version: number): Promise<void> {
    await this.client.call('POST', vaultPath(this.mount, 'keys', this.key, 'config'), {
      min_decryption_version: version,
    });
    await this.refresh();
  }
}

/** The key version in a transit ciphertext (`vault:v3:...`). */
function transitVersion(ciphertext: string): number | undefined {
  const match = /^vault:v(\d{1,9}):/.exec(ciphertext);
  return match ? Number(match[1]) : undefined;
}
