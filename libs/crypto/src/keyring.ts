import { randomBytes } from 'node:crypto';

/** One version of a keyring: a 32-byte key, base64, and when it was added. */
export interface KeyringVersion {
  readonly version: number;
  readonly key: string;
  readonly createdAt: string;
}

/**
 * The JSON form of a versioned keyring, as kept in a secret file (`data-keys.json`,
 * `blind-index-keys.json`). New data uses `current`; data under a version below
 * `minDecryptVersion` is refused, as with Vault transit's `min_decryption_version`.
 */
export interface KeyringFile {
  readonly current: number;
  readonly minDecryptVersion: number;
  readonly versions: readonly KeyringVersion[];
}

/** Raised when a keyring secret cannot be used. Names the secret and the rule, never a key. */
export class KeyringError extends Error {
  constructor(secret: string, problem: string) {
    super(`Secret "${secret}" is not a valid keyring: ${problem}.`);
    this.name = 'KeyringError';
  }
}

const MAX_VERSION = 0xffff;

/**
 * A validated keyring: versioned 32-byte keys, the current version and the oldest version
 * still allowed to decrypt. Immutable: rotation produces a new file ({@link addKeyringVersion}).
 */
export class Keyring {
  private constructor(
    readonly current: number,
    readonly minDecryptVersion: number,
    private readonly keys: ReadonlyMap<number, Buffer>,
    private readonly created: ReadonlyMap<number, Date>,
  ) {}

  /** Parses and checks the text of a keyring secret; `secret` names it in errors. */
  static parse(text: string, secret: string): Keyring {
    let file: KeyringFile;
    try {
      file = JSON.parse(text) as KeyringFile;
    } catch {
      throw new KeyringError(secret, 'it is not JSON');
    }
    if (typeof file !== 'object' || file === null || !Array.isArray(file.versions)) {
      throw new KeyringError(secret, 'it needs a "versions" list');
    }
    const keys = new Map<number, Buffer>();
    const created = new Map<number, Date>();
    for (const entry of file.versions as Array<Partial<KeyringVersion> | null>) {
      const version = entry?.version;
      if (!entry || !isVersion(version) || keys.has(version)) {
        throw new KeyringError(secret, `versions must be distinct whole numbers 1-${MAX_VERSION}`);
      }
      const key = Buffer.from(typeof entry.key === 'string' ? entry.key : '', 'base64');
      if (key.length !== 32) throw new KeyringError(secret, `version ${version} is not 32 bytes`);
      keys.set(version, key);
      const createdAt = new Date(entry.createdAt ?? Number.NaN);
      if (!Number.isNaN(createdAt.getTime())) created.set(version, createdAt);
    }
    if (!isVersion(file.current) || !keys.has(file.current)) {
      throw new KeyringError(secret, '"current" must name one of its versions');
    }
    const min = file.minDecryptVersion ?? 1;
    if (!isVersion(min) || min > file.current) {
      throw new KeyringError(secret, '"minDecryptVersion" must be from 1 to "current"');
    }
    return new Keyring(file.current, min, keys, created);
  }

  /** The key of a version that may still decrypt, or undefined. */
  key(version: number): Buffer | undefined {
    return version >= this.minDecryptVersion ? this.keys.get(version) : undefined;
  }

  /** Versions that may decrypt, newest first. */
  activeVersions(): number[] {
    return [...this.keys.keys()]
      .filter((version) => version >= this.minDecryptVersion)
      .sort((a, b) => b - a);
  }

  /** When a version was added, if the file says. */
  createdAt(version: number): Date | undefined {
    return this.created.get(version);
  }
}

/** A new keyring with one random version. */
export function createKeyringFile(now = new Date()): KeyringFile {
  return { current: 1, minDecryptVersion: 1, versions: [newVersion(1, now)] };
}

/** Adds a random version and makes it current; older versions keep decrypting. */
export function addKeyringVersion(file: KeyringFile, now = new Date()): KeyringFile {
  const next = Math.max(...file.versions.map((entry) => entry.version)) + 1;
  if (next > MAX_VERSION) throw new Error(`a keyring holds versions up to ${MAX_VERSION}`);
  return { ...file, current: next, versions: [...file.versions, newVersion(next, now)] };
}

/**
 * Stops versions below `version` from decrypting. With `trim`, their key material is removed
 * from the file too, so a backup taken before the change is the only way back.
 */
export function retireKeyringVersions(
  file: KeyringFile,
  version: number,
  trim = false,
): KeyringFile {
  if (version > file.current) throw new Error('cannot retire the current version');
  return {
    ...file,
    minDecryptVersion: Math.max(file.minDecryptVersion, version),
    versions: trim ? file.versions.filter((entry) => entry.version >= version) : file.versions,
  };
}

function newVersion(version: number, now: Date): KeyringVersion {
  return { version, key: randomBytes(32).toString('base64'), createdAt: now.toISOString() };
}

function isVersion(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_VERSION;
}
