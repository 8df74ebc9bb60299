import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';

import type { NatsTlsFiles } from './nats-tls';

/** How PostgreSQL connections are secured (`DATABASE_SSL`). */
export type DatabaseSslMode = 'disable' | 'require' | 'verify-full';

/**
 * Every setting of a Portcullis process, validated once at boot.
 * Nothing outside this module reads `process.env`.
 */
export interface AppConfig {
  readonly nodeEnv: 'development' | 'production' | 'test';
  readonly host: string;
  readonly port: number;
  /** Where clients reach this deployment; used in discovery documents. */
  readonly publicUrl: string;
  readonly dataDir: string;
  readonly databaseUrl?: string;
  readonly databaseSsl: DatabaseSslMode;
  readonly databaseCaFile?: string;
  readonly databasePoolSize: number;
  readonly natsUrl?: string;
  readonly natsQueue?: string;
  /** TLS to NATS; unset when no `NATS_TLS_*` file is named. */
  readonly natsTls?: NatsTlsFiles;
  readonly secretsDir: string;
  readonly createMissingSecrets: boolean;
  readonly logFormat: 'json' | 'pretty';
  readonly logLevel: 'error' | 'warn' | 'log' | 'debug';
  readonly tokenIssuer: string;
  readonly tokenAudience: string;
  readonly accessTokenTtlSeconds: number;
  /** Absolute lifetime of a session: no refresh extends it. */
  readonly refreshTokenTtlSeconds: number;
  /** A refresh token unused for this long expires. */
  readonly refreshTokenIdleSeconds: number;
  /** Rotate the token signing key when the active one is this old; 0 turns it off. */
  readonly tokenKeyRotationSeconds: number;
  readonly loginLimits: LoginLimits;
  /** Rules that watch the audit trail and act on bursts (auth only). */
  readonly detection: DetectionSettings;
  readonly messageTtlSeconds: number;
  /** Worker threads that verify message signatures; 0 verifies on the event loop. */
  readonly messageVerifyWorkers: number;
  readonly bootstrapAdminEmail?: string;
  readonly bootstrapAdminPassword?: string;
  readonly swaggerEnabled: boolean;
  /**
   * Proxies whose `X-Forwarded-For` is believed (IPs, CIDR ranges, or `loopback`,
   * `linklocal`, `uniquelocal`). Empty: the client IP is always the socket's address.
   */
  readonly trustedProxies: readonly string[];
  /** Browser origins allowed to call the API cross-origin. Empty: no CORS headers at all. */
  readonly corsOrigins: readonly string[];
  /** Length of one rate-limit window, in milliseconds. */
  readonly rateLimitWindowMs: number;
  /** Requests one client IP may make per window, across all routes. */
  readonly rateLimitPerIp: number;
  /** Requests one authenticated user may make per window, across all routes. */
  readonly rateLimitPerUser: number;
  /** Verified access tokens remembered per process; 0 turns the cache off. */
  readonly tokenCacheSize: number;
  /** How often data and blind-index keys and the trust file are reloaded, in seconds. */
  readonly keyReloadSeconds: number;
  /**
   * Secrets given as `PORTCULLIS_SECRET_<NAME>` variables (development only), by variable
   * name. Never logged.
   */
  readonly environmentSecrets: Readonly<Record<string, string>>;
  /** HashiCorp Vault, when `VAULT_ADDR` is set: KV for secrets, transit for data keys. */
  readonly vault?: VaultConfig;
}

/** Where Vault is and which of its engines Portcullis uses. */
export interface VaultConfig {
  readonly address: string;
  /** `VAULT_TOKEN`; otherwise the token is read from `tokenFile` at start-up. */
  readonly token?: string;
  readonly tokenFile?: string;
  readonly namespace?: string;
  readonly kvMount: string;
  readonly kvPrefix: string;
  readonly transitMount: string;
  readonly transitKey: string;
}

/** Failed-login limits: growing delays after `freeFailures`, lockout at twice that. */
export interface LoginLimits {
  readonly accountFreeFailures: number;
  readonly ipFreeFailures: number;
  readonly windowSeconds: number;
  readonly lockoutSeconds: number;
}

/** A burst: at least `threshold` matching records within `windowSeconds`. */
export interface BurstRule {
  readonly threshold: number;
  readonly windowSeconds: number;
}

/** Thresholds of the detection rules that count audit records, and their memory bound. */
export interface DetectionSettings {
  /** Denied accesses to other users' objects by one user; revokes that user's sessions. */
  readonly accessProbing: BurstRule;
  /** Refused messages claiming one sender; raises an alert at most once per window. */
  readonly messageRefusals: BurstRule;
  /** Users (or senders) each rule keeps counts for; the least recently seen are dropped. */
  readonly maxTrackedSubjects: number;
}

/** Raised when the environment holds a value the application cannot start with. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

class EnvReader {
  readonly problems: string[] = [];

  constructor(private readonly env: Env) {}

  string(name: string): string | undefined {
    const value = this.env[name];
    return value === undefined || value.trim() === '' ? undefined : value.trim();
  }

  integer(name: string, fallback: number, min: number, max: number): number {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
      this.problems.push(`${name} must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return Number(raw);
  }

  boolean(name: string, fallback: boolean): boolean {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (raw !== 'true' && raw !== 'false') {
      this.problems.push(`${name} must be true or false`);
      return fallback;
    }
    return raw === 'true';
  }

  oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
    const raw = this.string(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      this.problems.push(`${name} must be one of: ${allowed.join(', ')}`);
      return fallback;
    }
    return raw as T;
  }

  url(name: string, protocols: readonly string[]): string | undefined {
    const raw = this.string(name);
    if (raw === undefined) return undefined;
    try {
      const parsed = new URL(raw);
      if (!protocols.includes(parsed.protocol)) {
        this.problems.push(`${name} must use ${protocols.join(' or ')}`);
      }
    } catch {
      // The value may hold a password, so it is never echoed.
      this.problems.push(`${name} is not a valid URL`);
    }
    return raw;
  }

  /** A comma-separated list; blank entries are dropped. */
  list(name: string): string[] {
    return (this.string(name) ?? '')
      .split(',')
      .map((entry) => entry.trim())
      .filter((entry) => entry !== '');
  }

  /** IP addresses, CIDR ranges or the range names that proxy-addr knows. */
  proxies(name: string): string[] {
    const entries = this.list(name);
    const bad = entries.filter((entry) => !isAddressOrRange(entry));
    if (bad.length > 0) {
      this.problems.push(
        `${name} must list IP addresses, CIDR ranges, loopback, linklocal or uniquelocal`,
      );
      return [];
    }
    return entries;
  }

  /** Origins such as `https://shop.example.com`: a scheme, a host, an optional port. */
  origins(name: string): string[] {
    const entries = this.list(name);
    const valid = entries.every((entry) => {
      try {
        const url = new URL(entry);
        return ['http:', 'https:'].includes(url.protocol) && url.origin === entry;
      } catch {
        return false;
      }
    });
    if (!valid) {
      this.problems.push(`${name} must list origins like https://shop.example.com (no path)`);
      return [];
    }
    return entries;
  }
}

const PROXY_RANGE_NAMES = ['loopback', 'linklocal', 'uniquelocal'];

const ENVIRONMENT_SECRET_PREFIX = 'PORTCULLIS_SECRET_';

/**
 * `PORTCULLIS_SECRET_*` variables; refused in production, where secrets come from files or
 * Vault.
 */
function environmentSecrets(env: Env, read: EnvReader, nodeEnv: string): Record<string, string> {
  const secrets: Record<string, string> = {};
  for (const [name, value] of Object.entries(env)) {
    if (name.startsWith(ENVIRONMENT_SECRET_PREFIX) && value !== undefined && value !== '') {
      secrets[name] = value;
    }
  }
  if (nodeEnv === 'production' && Object.keys(secrets).length > 0) {
    read.problems.push(
      `${ENVIRONMENT_SECRET_PREFIX}* variables are for development; in production give secrets ` +
        'as files in SECRETS_DIR or through Vault',
    );
    return {};
  }
  return secrets;
}

function vaultConfig(read: EnvReader): VaultConfig | undefined {
  const address = read.url('VAULT_ADDR', ['http:', 'https:']);
  if (address === undefined) return undefined;
  const token = read.string('VAULT_TOKEN');
  const tokenFile = read.string('VAULT_TOKEN_FILE');
  if (token === undefined && tokenFile === undefined) {
    read.problems.push('VAULT_ADDR needs VAULT_TOKEN or VAULT_TOKEN_FILE');
  }
  return {
    address,
    token,
    tokenFile: tokenFile === undefined ? undefined : resolve(tokenFile),
    namespace: read.string('VAULT_NAMESPACE'),
    kvMount: read.string('VAULT_KV_MOUNT') ?? 'secret',
    kvPrefix: read.string('VAULT_KV_PREFIX') ?? 'portcullis',
    transitMount: read.string('VAULT_TRANSIT_MOUNT') ?? 'transit',
    transitKey: read.string('VAULT_TRANSIT_KEY') ?? 'portcullis-data',
  };
}

/**
 * TLS parameters that `pg` reads from a connection URL. They would silently override
 * `DATABASE_SSL` (`sslmode=disable` turns TLS off), so the URL may not carry them.
 */
const URL_TLS_PARAMETERS = ['ssl', 'sslmode', 'sslcert', 'sslkey', 'sslrootcert', 'uselibpqcompat'];

function databaseTlsProblems(
  url: string | undefined,
  mode: DatabaseSslMode,
  caFile: string | undefined,
): string[] {
  const problems: string[] = [];
  let parameters: string[] = [];
  try {
    parameters = url ? [...new URL(url).searchParams.keys()] : [];
  } catch {
    // An unparsable URL is already reported.
  }
  if (parameters.some((name) => URL_TLS_PARAMETERS.includes(name))) {
    problems.push(
      `DATABASE_URL must not set ${URL_TLS_PARAMETERS.join(', ')}: ` +
        'use DATABASE_SSL and DATABASE_CA_FILE',
    );
  }
  if (caFile !== undefined && mode !== 'verify-full') {
    problems.push('DATABASE_CA_FILE needs DATABASE_SSL=verify-full');
  }
  return problems;
}

function natsTlsFiles(read: EnvReader): NatsTlsFiles | undefined {
  const caFile = optionalPath(read.string('NATS_TLS_CA_FILE'));
  const certFile = optionalPath(read.string('NATS_TLS_CERT_FILE'));
  const keyFile = optionalPath(read.string('NATS_TLS_KEY_FILE'));
  if ((certFile === undefined) !== (keyFile === undefined)) {
    read.problems.push('NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE must be set together');
  }
  if (caFile === undefined && certFile === undefined && keyFile === undefined) return undefined;
  if (read.string('NATS_URL') === undefined) {
    read.problems.push('NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE need NATS_URL');
  }
  return { caFile, certFile, keyFile };
}

function isAddressOrRange(entry: string): boolean {
  if (PROXY_RANGE_NAMES.includes(entry)) return true;
  const [address, prefix, ...rest] = entry.split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (family === 4 ? 32 : 128);
}

/** Reads and validates the environment. Throws {@link ConfigError} naming every bad setting. */
export function loadConfig(env: Env = process.env): AppConfig {
  const read = new EnvReader(env);
  const nodeEnv = read.oneOf('NODE_ENV', ['development', 'production', 'test'], 'development');
  const accessTokenTtlSeconds = read.integer('ACCESS_TOKEN_TTL_SECONDS', 900, 30, 900);
  const bootstrapAdminEmail = read.string('BOOTSTRAP_ADMIN_EMAIL')?.toLowerCase();
  const bootstrapAdminPassword = read.string('BOOTSTRAP_ADMIN_PASSWORD');
  if ((bootstrapAdminEmail === undefined) !== (bootstrapAdminPassword === undefined)) {
    read.problems.push('BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD must be set together');
  }

  const port = read.integer('PORT', 3000, 0, 65535);
  const config: AppConfig = {
    nodeEnv,
    host: read.string('HOST') ?? '127.0.0.1',
    port,
    publicUrl: (read.url('PUBLIC_URL', ['http:', 'https:']) ?? `http://localhost:${port}`).replace(
      /\/+$/,
      '',
    ),
    dataDir: resolve(read.string('DATA_DIR') ?? './data'),
    databaseUrl: read.url('DATABASE_URL', ['postgres:', 'postgresql:']),
    databaseSsl: read.oneOf('DATABASE_SSL', ['disable', 'require', 'verify-full'], 'disable'),
    databaseCaFile: optionalPath(read.string('DATABASE_CA_FILE')),
    databasePoolSize: read.integer('DATABASE_POOL_SIZE', 10, 1, 200),
    natsUrl: read.url('NATS_URL', ['nats:', 'tls:']),
    natsQueue: read.string('NATS_QUEUE'),
    natsTls: natsTlsFiles(read),
    secretsDir: resolve(read.string('SECRETS_DIR') ?? './secrets'),
    createMissingSecrets: read.boolean('CREATE_MISSING_SECRETS', nodeEnv !== 'production'),
    logFormat: read.oneOf('LOG_FORMAT', ['json', 'pretty'], 'json'),
    logLevel: read.oneOf('LOG_LEVEL', ['error', 'warn', 'log', 'debug'], 'log'),
    tokenIssuer: read.string('TOKEN_ISSUER') ?? 'urn:portcullis:auth',
    tokenAudience: read.string('TOKEN_AUDIENCE') ?? 'urn:portcullis:api',
    accessTokenTtlSeconds,
    refreshTokenTtlSeconds: read.integer('REFRESH_TOKEN_TTL_SECONDS', 1_209_600, 300, 7_776_000),
    refreshTokenIdleSeconds: read.integer('REFRESH_TOKEN_IDLE_SECONDS', 604_800, 60, 7_776_000),
    tokenKeyRotationSeconds: read.integer('TOKEN_KEY_ROTATION_SECONDS', 2_592_000, 0, 31_536_000),
    loginLimits: {
      accountFreeFailures: read.integer('LOGIN_ACCOUNT_FREE_FAILURES', 5, 1, 1000),
      ipFreeFailures: read.integer('LOGIN_IP_FREE_FAILURES', 20, 1, 100_000),
      windowSeconds: read.integer('LOGIN_WINDOW_SECONDS', 900, 1, 86_400),
      lockoutSeconds: read.integer('LOGIN_LOCKOUT_SECONDS', 900, 1, 86_400),
    },
    detection: {
      accessProbing: {
        threshold: read.integer('DETECTION_PROBING_THRESHOLD', 10, 2, 1000),
        windowSeconds: read.integer('DETECTION_PROBING_WINDOW_SECONDS', 60, 1, 86_400),
      },
      messageRefusals: {
        threshold: read.integer('DETECTION_REFUSALS_THRESHOLD', 20, 2, 1000),
        windowSeconds: read.integer('DETECTION_REFUSALS_WINDOW_SECONDS', 60, 1, 86_400),
      },
      maxTrackedSubjects: read.integer('DETECTION_MAX_TRACKED', 10_000, 100, 1_000_000),
    },
    messageTtlSeconds: read.integer('MESSAGE_TTL_SECONDS', 60, 5, 3600),
    messageVerifyWorkers: read.integer('MESSAGE_VERIFY_WORKERS', defaultVerifyWorkers(), 0, 16),
    bootstrapAdminEmail,
    bootstrapAdminPassword,
    swaggerEnabled: read.boolean('SWAGGER_ENABLED', true),
    trustedProxies: read.proxies('TRUSTED_PROXIES'),
    corsOrigins: read.origins('CORS_ORIGINS'),
    rateLimitWindowMs: read.integer('RATE_LIMIT_WINDOW_SECONDS', 60, 1, 3600) * 1000,
    rateLimitPerIp: read.integer('RATE_LIMIT_PER_IP', 600, 1, 100_000_000),
    rateLimitPerUser: read.integer('RATE_LIMIT_PER_USER', 300, 1, 100_000_000),
    tokenCacheSize: read.integer('TOKEN_CACHE_SIZE', 10_000, 0, 1_000_000),
    keyReloadSeconds: read.integer('KEY_RELOAD_SECONDS', 30, 1, 3600),
    environmentSecrets: environmentSecrets(env, read, nodeEnv),
    vault: vaultConfig(read),
  };

  read.problems.push(
    ...databaseTlsProblems(config.databaseUrl, config.databaseSsl, config.databaseCaFile),
  );
  if (read.problems.length > 0) throw new ConfigError(read.problems);
  return config;
}

/** One core stays with the event loop; up to 4 verify, none on a one-core machine. */
export function defaultVerifyWorkers(): number {
  return Math.min(4, availableParallelism() - 1);
}

function optionalPath(value: string | undefined): string | undefined {
  return value === undefined ? undefined : resolve(value);
}
