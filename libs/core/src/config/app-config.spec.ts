import { resolve } from 'node:path';
import { availableParallelism } from 'node:os';

import { type AppConfig, ConfigError, defaultVerifyWorkers, loadConfig } from './app-config';

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  throw new Error('expected a ConfigError');
}

describe(loadConfig.name, () => {
  describe('with an empty environment', () => {
    it('uses the development defaults', () => {
      expect(loadConfig({})).toMatchObject<Partial<AppConfig>>({
        nodeEnv: 'development',
        host: '127.0.0.1',
        port: 3000,
        dataDir: resolve('./data'),
        databaseUrl: undefined,
        databaseSsl: 'disable',
        databaseCaFile: undefined,
        databasePoolSize: 10,
        natsUrl: undefined,
        natsQueue: undefined,
        secretsDir: resolve('./secrets'),
        createMissingSecrets: true,
        logFormat: 'json',
        logLevel: 'log',
        tokenIssuer: 'urn:portcullis:auth',
        tokenAudience: 'urn:portcullis:api',
        accessTokenTtlSeconds: 900,
        refreshTokenTtlSeconds: 1_209_600,
        messageTtlSeconds: 60,
        bootstrapAdminEmail: undefined,
        bootstrapAdminPassword: undefined,
        swaggerEnabled: true,
        trustedProxies: [],
        corsOrigins: [],
        rateLimitWindowMs: 60_000,
        rateLimitPerIp: 600,
        rateLimitPerUser: 300,
        tokenCacheSize: 10_000,
      });
    });

    it('does not create missing secrets in production', () => {
      expect(loadConfig({ NODE_ENV: 'production' }).createMissingSecrets).toBe(false);
    });

    it('treats blank values as unset', () => {
      expect(loadConfig({ PORT: '  ', DATABASE_URL: '' })).toMatchObject({
        port: 3000,
        databaseUrl: undefined,
      });
    });
  });

  describe('with valid values', () => {
    it('reads them', () => {
      const config = loadConfig({
        PORT: '8080',
        DATABASE_URL: 'postgres://portcullis@db:5432/portcullis',
        DATABASE_SSL: 'verify-full',
        NATS_URL: 'tls://nats:4222',
        ACCESS_TOKEN_TTL_SECONDS: '300',
        BOOTSTRAP_ADMIN_EMAIL: ' Admin@Example.COM ',
        BOOTSTRAP_ADMIN_PASSWORD: 'correct horse battery staple',
        SWAGGER_ENABLED: 'false',
      });

      expect(config).toMatchObject({
        port: 8080,
        databaseUrl: 'postgres://portcullis@db:5432/portcullis',
        databaseSsl: 'verify-full',
        natsUrl: 'tls://nats:4222',
        accessTokenTtlSeconds: 300,
        bootstrapAdminEmail: 'admin@example.com',
        bootstrapAdminPassword: 'correct horse battery staple',
        swaggerEnabled: false,
      });
    });
  });

  describe('with bad values', () => {
    it('reports every bad setting at once', () => {
      const problems = problemsOf({
        PORT: 'eighty',
        LOG_FORMAT: 'xml',
        SWAGGER_ENABLED: 'yes',
        DATABASE_SSL: 'prefer',
        MESSAGE_TTL_SECONDS: '-5',
      });

      expect(problems.sort()).toEqual([
        'DATABASE_SSL must be one of: disable, require, verify-full',
        'LOG_FORMAT must be one of: json, pretty',
        'MESSAGE_TTL_SECONDS must be a whole number from 5 to 3600',
        'PORT must be a whole number from 0 to 65535',
        'SWAGGER_ENABLED must be true or false',
      ]);
    });

    it('names them in the error message', () => {
      expect(() => loadConfig({ PORT: '70000', NODE_ENV: 'staging' })).toThrow(
        /^Invalid configuration:\n {2}- NODE_ENV must be one of: .*\n {2}- PORT must be /,
      );
    });

    it.each([
      ['an unparsable URL', 'postgres://portcullis:s3cr3t-pw@[db:5432/portcullis'],
      ['a URL of another protocol', 'mysql://portcullis:s3cr3t-pw@db:3306/portcullis'],
    ])('does not echo %s in DATABASE_URL', (_, url) => {
      let message = '';
      try {
        loadConfig({ DATABASE_URL: url });
      } catch (error) {
        message = error instanceof Error ? error.message : String(error);
      }

      expect(message).toMatch(
        /DATABASE_URL (is not a valid URL|must use postgres: or postgresql:)/,
      );
      expect(message).not.toContain('s3cr3t-pw');
      expect(message).not.toContain('portcullis:');
    });

    it('refuses a bootstrap admin email without a password', () => {
      expect(problemsOf({ BOOTSTRAP_ADMIN_EMAIL: 'admin@example.com' })).toEqual([
        'BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD must be set together',
      ]);
    });

    it('refuses a bootstrap admin password without an email', () => {
      expect(problemsOf({ BOOTSTRAP_ADMIN_PASSWORD: 'correct horse battery' })).toEqual([
        'BOOTSTRAP_ADMIN_EMAIL and BOOTSTRAP_ADMIN_PASSWORD must be set together',
      ]);
    });

    it.each(['901', '3600', '29', '1.5', '9e2'])('refuses ACCESS_TOKEN_TTL_SECONDS=%s', (ttl) => {
      expect(problemsOf({ ACCESS_TOKEN_TTL_SECONDS: ttl })).toEqual([
        'ACCESS_TOKEN_TTL_SECONDS must be a whole number from 30 to 900',
      ]);
    });

    it('accepts ACCESS_TOKEN_TTL_SECONDS at its limits', () => {
      expect(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '900' }).accessTokenTtlSeconds).toBe(900);
      expect(loadConfig({ ACCESS_TOKEN_TTL_SECONDS: '30' }).accessTokenTtlSeconds).toBe(30);
    });
  });

  describe('with MESSAGE_VERIFY_WORKERS', () => {
    it('starts one worker fewer than the cores by default, at most 4', () => {
      const expected = Math.min(4, availableParallelism() - 1);

      expect(loadConfig({}).messageVerifyWorkers).toBe(expected);
      expect(defaultVerifyWorkers()).toBe(expected);
    });

    it('takes 0 (verify on the event loop) up to 16', () => {
      expect(loadConfig({ MESSAGE_VERIFY_WORKERS: '0' }).messageVerifyWorkers).toBe(0);
      expect(loadConfig({ MESSAGE_VERIFY_WORKERS: '16' }).messageVerifyWorkers).toBe(16);
      expect(problemsOf({ MESSAGE_VERIFY_WORKERS: '17' })).toEqual([
        'MESSAGE_VERIFY_WORKERS must be a whole number from 0 to 16',
      ]);
    });
  });

  describe('with proxy, CORS and rate-limit settings', () => {
    it('reads lists of trusted proxies and origins', () => {
      const config = loadConfig({
        TRUSTED_PROXIES: '10.0.0.0/8, 192.168.1.7 ,loopback,fd00::/8',
        CORS_ORIGINS: 'https://shop.example.com,http://localhost:5173',
        RATE_LIMIT_WINDOW_SECONDS: '10',
        RATE_LIMIT_PER_IP: '5',
        RATE_LIMIT_PER_USER: '3',
        TOKEN_CACHE_SIZE: '0',
      });

      expect(config).toMatchObject({
        trustedProxies: ['10.0.0.0/8', '192.168.1.7', 'loopback', 'fd00::/8'],
        corsOrigins: ['https://shop.example.com', 'http://localhost:5173'],
        rateLimitWindowMs: 10_000,
        rateLimitPerIp: 5,
        rateLimitPerUser: 3,
        tokenCacheSize: 0,
      });
    });

    it.each(['*', '10.0.0.0/33', 'proxy.example.com', '10.0.0.1/8/1', '::1/129'])(
      'refuses TRUSTED_PROXIES=%s',
      (value) => {
        expect(problemsOf({ TRUSTED_PROXIES: value })).toEqual([
          'TRUSTED_PROXIES must list IP addresses, CIDR ranges, loopback, linklocal or uniquelocal',
        ]);
      },
    );

    it.each(['*', 'https://shop.example.com/', 'shop.example.com', 'ftp://files.example.com'])(
      'refuses CORS_ORIGINS=%s',
      (value) => {
        expect(problemsOf({ CORS_ORIGINS: value })).toEqual([
          'CORS_ORIGINS must list origins like https://shop.example.com (no path)',
        ]);
      },
    );

    it('refuses a rate limit of zero', () => {
      expect(problemsOf({ RATE_LIMIT_PER_IP: '0' })).toEqual([
        'RATE_LIMIT_PER_IP must be a whole number from 1 to 100000000',
      ]);
    });
  });

  describe('with TLS settings for NATS', () => {
    const nats = { NATS_URL: 'tls://nats:4222' };

    it('reads the CA, certificate and key files as absolute paths', () => {
      const config = loadConfig({
        ...nats,
        NATS_TLS_CA_FILE: 'secrets/tls/ca.crt',
        NATS_TLS_CERT_FILE: '/run/secrets/orders.crt',
        NATS_TLS_KEY_FILE: '/run/secrets/orders.key',
      });

      expect(config.natsTls).toEqual({
        caFile: resolve('secrets/tls/ca.crt'),
        certFile: '/run/secrets/orders.crt',
        keyFile: '/run/secrets/orders.key',
      });
    });

    it('leaves TLS off when no file is named', () => {
      expect(loadConfig(nats).natsTls).toBeUndefined();
    });

    it('accepts a CA alone, for servers that ask for no client certificate', () => {
      expect(loadConfig({ ...nats, NATS_TLS_CA_FILE: '/ca.crt' }).natsTls).toEqual({
        caFile: '/ca.crt',
      });
    });

    it.each([
      ['NATS_TLS_CERT_FILE', '/orders.crt'],
      ['NATS_TLS_KEY_FILE', '/orders.key'],
    ])('refuses %s alone', (name, value) => {
      expect(problemsOf({ ...nats, [name]: value })).toEqual([
        'NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE must be set together',
      ]);
    });

    it('refuses TLS files without NATS_URL', () => {
      expect(problemsOf({ NATS_TLS_CA_FILE: '/ca.crt' })).toEqual([
        'NATS_TLS_CA_FILE, NATS_TLS_CERT_FILE and NATS_TLS_KEY_FILE need NATS_URL',
      ]);
    });
  });

  describe('with TLS settings for PostgreSQL', () => {
    const url = 'postgres://portcullis@db:5432/portcullis';

    it('resolves DATABASE_CA_FILE to an absolute path', () => {
      const config = loadConfig({
        DATABASE_URL: url,
        DATABASE_SSL: 'verify-full',
        DATABASE_CA_FILE: 'secrets/tls/ca.crt',
      });

      expect(config.databaseCaFile).toBe(resolve('secrets/tls/ca.crt'));
    });

    it.each(['sslmode=disable', 'ssl=false', 'sslrootcert=/tmp/ca.crt', 'uselibpqcompat=true'])(
      'refuses a DATABASE_URL with %s, which would override DATABASE_SSL',
      (parameter) => {
        expect(
          problemsOf({ DATABASE_URL: `${url}?${parameter}`, DATABASE_SSL: 'verify-full' }),
        ).toEqual([
          'DATABASE_URL must not set ssl, sslmode, sslcert, sslkey, sslrootcert, uselibpqcompat: ' +
            'use DATABASE_SSL and DATABASE_CA_FILE',
        ]);
      },
    );

    it('accepts other URL parameters', () => {
      expect(loadConfig({ DATABASE_URL: `${url}?application_name=x` }).databaseUrl).toBe(
        `${url}?application_name=x`,
      );
    });

    it.each(['disable', 'require'])('refuses DATABASE_CA_FILE with DATABASE_SSL=%s', (mode) => {
      expect(
        problemsOf({ DATABASE_URL: url, DATABASE_SSL: mode, DATABASE_CA_FILE: '/etc/ca.crt' }),
      ).toEqual(['DATABASE_CA_FILE needs DATABASE_SSL=verify-full']);
    });
  });

  describe('secrets and keys', () => {
    it('reloads keys every 30 seconds and uses neither environment secrets nor Vault by default', () => {
      expect(loadConfig({})).toMatchObject({
        keyReloadSeconds: 30,
        environmentSecrets: {},
        vault: undefined,
      });
    });

    it('collects PORTCULLIS_SECRET_* variables outside production', () => {
      const config = loadConfig({
        PORTCULLIS_SECRET_DATA_KEYS_JSON: '{"current":1}',
        PORTCULLIS_SECRETS_DIR: 'not a secret variable',
      });

      expect(config.environmentSecrets).toEqual({
        PORTCULLIS_SECRET_DATA_KEYS_JSON: '{"current":1}',
      });
    });

    it('refuses them in production without echoing them', () => {
      const problems = problemsOf({
        NODE_ENV: 'production',
        PORTCULLIS_SECRET_DATA_KEYS_JSON: 'very-secret-value',
      });

      expect(problems).toEqual([
        'PORTCULLIS_SECRET_* variables are for development; in production give secrets as ' +
          'files in SECRETS_DIR or through Vault',
      ]);
      expect(problems.join()).not.toContain('very-secret-value');
    });

    it('reads Vault settings, with the default mounts and key', () => {
      expect(
        loadConfig({ VAULT_ADDR: 'https://vault.internal:8200', VAULT_TOKEN: 'hvs.x' }).vault,
      ).toEqual({
        address: 'https://vault.internal:8200',
        token: 'hvs.x',
        tokenFile: undefined,
        namespace: undefined,
        kvMount: 'secret',
        kvPrefix: 'portcullis',
        transitMount: 'transit',
        transitKey: 'portcullis-data',
      });
    });

    it('needs a Vault token or token file with VAULT_ADDR', () => {
      expect(problemsOf({ VAULT_ADDR: 'https://vault.internal:8200' })).toEqual([
        'VAULT_ADDR needs VAULT_TOKEN or VAULT_TOKEN_FILE',
      ]);
    });
  });

  describe('detection rules', () => {
    it('revoke after 10 denied accesses in 60 s and alert after 20 refused messages in 60 s', () => {
      expect(loadConfig({}).detection).toEqual({
        accessProbing: { threshold: 10, windowSeconds: 60 },
        messageRefusals: { threshold: 20, windowSeconds: 60 },
        maxTrackedSubjects: 10_000,
      });
    });

    it('reads every threshold, window and the memory bound', () => {
      const detection = loadConfig({
        DETECTION_PROBING_THRESHOLD: '5',
        DETECTION_PROBING_WINDOW_SECONDS: '30',
        DETECTION_REFUSALS_THRESHOLD: '3',
        DETECTION_REFUSALS_WINDOW_SECONDS: '120',
        DETECTION_MAX_TRACKED: '500',
      }).detection;

      expect(detection).toEqual({
        accessProbing: { threshold: 5, windowSeconds: 30 },
        messageRefusals: { threshold: 3, windowSeconds: 120 },
        maxTrackedSubjects: 500,
      });
    });

    it('refuses a threshold of one, which would act on a single mistake', () => {
      expect(
        problemsOf({ DETECTION_PROBING_THRESHOLD: '1', DETECTION_REFUSALS_THRESHOLD: '1' }),
      ).toEqual([
        'DETECTION_PROBING_THRESHOLD must be a whole number from 2 to 1000',
        'DETECTION_REFUSALS_THRESHOLD must be a whole number from 2 to 1000',
      ]);
    });

    it('refuses an unbounded number of tracked subjects', () => {
      expect(problemsOf({ DETECTION_MAX_TRACKED: '5000000' })).toEqual([
        'DETECTION_MAX_TRACKED must be a whole number from 100 to 1000000',
      ]);
    });
  });
});
