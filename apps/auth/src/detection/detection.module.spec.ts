import { jest } from '@jest/globals';
import { Global, HttpException, Module } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';

import {
  AUDIT_OBSERVERS,
  AuditModule,
  type AuditObserver,
  type AuditRecord,
  SecurityEvents,
} from '@portcullis/audit';
import {
  MESSAGE_GUARDS,
  SERVICE_NAMES,
  closeEmbeddedDatabases,
  createHost,
  loadConfig,
} from '@portcullis/core';
import { ensureDevelopmentSecrets } from '@portcullis/crypto';
import { MessageClient, MessagingModule } from '@portcullis/messaging';

import { createTempDir, removeTempDir } from '../../../../jest/temp-dir';
import { AccountsService } from '../accounts/accounts.service';
import { AuthModule } from '../auth.module';
import { SessionsService } from '../tokens/sessions.service';

const PASSWORD = 'a long enough password 42';

/** Stands in for the security module's message guards, which this suite does not load. */
@Global()
@Module({ providers: [{ provide: MESSAGE_GUARDS, useValue: [] }], exports: [MESSAGE_GUARDS] })
class NoMessageGuards {}

/**
 * The auth app on its embedded database, through its services. Audit records are handed to
 * the registered observers as the collector hands them. That revoked tokens are then refused
 * by every service, over HTTP, is the end-to-end suite's part.
 */
describe('detection in the auth app', () => {
  let directory: string;
  let app: NestFastifyApplication;
  let observers: AuditObserver[];
  let recorded: jest.SpiedFunction<SecurityEvents['record']>;
  let dataSource: DataSource;
  const published: Array<{ type: string; data: Uint8Array }> = [];
  let accounts: AccountsService;
  let sessions: SessionsService;

  beforeAll(async () => {
    directory = createTempDir('detection');
    const config = loadConfig({
      NODE_ENV: 'test',
      DATA_DIR: join(directory, 'data'),
      SECRETS_DIR: join(directory, 'secrets'),
      SWAGGER_ENABLED: 'false',
      LOG_LEVEL: 'error',
      LOGIN_ACCOUNT_FREE_FAILURES: '2',
      DETECTION_PROBING_THRESHOLD: '10',
      DETECTION_PROBING_WINDOW_SECONDS: '60',
    });
    ensureDevelopmentSecrets(config.secretsDir, SERVICE_NAMES);
    app = await createHost(
      {
        name: 'auth',
        services: ['auth'],
        // Without the security module, whose rate limiter Jest cannot load: no request or
        // message reaches auth's handlers, and revocations are read where auth keeps them.
        imports: () => [AuditModule, MessagingModule.forRoot(), NoMessageGuards, AuthModule],
      },
      config,
    );
    await app.init();
    accounts = app.get(AccountsService, { strict: false });
    sessions = app.get(SessionsService, { strict: false });
    observers = app.get<AuditObserver[]>(AUDIT_OBSERVERS, { strict: false });
    recorded = jest.spyOn(app.get(SecurityEvents, { strict: false }), 'record');
    dataSource = app.get<DataSource>(getDataSourceToken('auth'), { strict: false });
    const stream = await app.get(MessageClient, { strict: false }).eventStream();
    const publish = stream.publish.bind(stream);
    jest.spyOn(stream, 'publish').mockImplementation((type, id, data) => {
      published.push({ type, data });
      return publish(type, id, data);
    });
  }, 120_000);

  afterAll(async () => {
    await app?.close();
    await closeEmbeddedDatabases();
    removeTempDir(directory);
  });

  beforeEach(() => recorded.mockClear());

  const CLIENT_IP = '203.0.113.7';

  async function customer(): Promise<{ id: string; email: string; refreshToken: string }> {
    const email = `c-${randomUUID().slice(0, 8)}@example.com`;
    const { id } = await accounts.register({ email, password: PASSWORD });
    const { refreshToken } = await accounts.login({ email, password: PASSWORD }, CLIENT_IP);
    return { id, email, refreshToken };
  }

  /** The HTTP status a call ends with: 200, or the status of the exception it throws. */
  async function statusOf(call: Promise<unknown>): Promise<number> {
    try {
      await call;
      return 200;
    } catch (error) {
      if (error instanceof HttpException) return error.getStatus();
      throw error;
    }
  }

  function alerts(rule: string) {
    return recorded.mock.calls
      .map(([event]) => event)
      .filter((event) => event.type === 'security.alert' && event.reason === rule);
  }

  function deniedAccess(userId: string): AuditRecord {
    return {
      id: randomUUID(),
      time: new Date().toISOString(),
      service: 'orders',
      type: 'access.denied',
      outcome: 'denied',
      reason: 'not_owner',
      actor: { userId, roles: ['customer'] },
      resource: { type: 'order', id: randomUUID() },
      correlationId: randomUUID(),
    };
  }

  async function observe(records: AuditRecord[]): Promise<void> {
    for (const observer of observers) await observer.observe(records);
  }

  /** Why each of the account's sessions was revoked (null: live). */
  async function revocationReasons(accountId: string): Promise<Array<string | null>> {
    const rows = await dataSource.query<Array<{ revoked_reason: string | null }>>(
      'SELECT revoked_reason FROM auth.sessions WHERE account_id = $1',
      [accountId],
    );
    return rows.map((row) => row.revoked_reason);
  }

  /**
   * The `auth.session.revoked` events auth announced for the account: what its relay published
   * once its outbox was empty (a row leaves the outbox only after the stream took it).
   */
  async function revocationEvents(accountId: string) {
    const deadline = Date.now() + 5_000;
    const left = async (): Promise<number> =>
      (
        await dataSource.query<Array<{ n: number }>>('SELECT count(*)::int AS n FROM auth.outbox')
      )[0].n;
    while ((await left()) > 0) {
      if (Date.now() > deadline) throw new Error('auth outbox not relayed within 5 s');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return published
      .filter((message) => message.type === 'auth.session.revoked')
      .map(({ data }) => {
        // `<kid>.<signature>.[<proof>.]<envelope JSON>`: the signature was checked by receivers.
        const text = Buffer.from(data).toString('utf8');
        return JSON.parse(text.slice(text.indexOf('{'))) as {
          corr: string;
          payload: { accountId: string; sessionIds: string[]; reason: string };
        };
      })
      .filter((envelope) => envelope.payload.accountId === accountId);
  }

  describe('a customer denied ten of other customers’ objects within a minute', () => {
    it('has every session revoked and announced, while another customer keeps theirs', async () => {
      const mallory = await customer();
      await accounts.login({ email: mallory.email, password: PASSWORD }, CLIENT_IP);
      const ada = await customer();
      const probes = Array.from({ length: 10 }, () => deniedAccess(mallory.id));

      await observe(probes);

      expect(await revocationReasons(mallory.id)).toEqual(['abuse', 'abuse']);
      const [event, ...others] = await revocationEvents(mallory.id);
      expect(others).toEqual([]);
      expect(event.payload.reason).toBe('abuse');
      expect(event.payload.sessionIds).toHaveLength(2);
      expect(event.corr).toBe(probes[9].correlationId);
      expect(await revocationReasons(ada.id)).toEqual([null]);
      expect(alerts('access.probing')).toEqual([
        {
          type: 'security.alert',
          outcome: 'denied',
          reason: 'access.probing',
          resourceType: 'account',
          resourceId: mallory.id,
          details: { threshold: 10, windowSeconds: 60, action: 'sessions_revoked', sessions: 2 },
        },
      ]);
    });

    it('can no longer refresh', async () => {
      const mallory = await customer();

      await observe(Array.from({ length: 10 }, () => deniedAccess(mallory.id)));

      expect(await statusOf(sessions.refresh(mallory.refreshToken, CLIENT_IP))).toBe(401);
    });
  });

  describe('a customer denied nine times', () => {
    it('keeps every session and raises no alert', async () => {
      const grace = await customer();

      await observe(Array.from({ length: 9 }, () => deniedAccess(grace.id)));

      expect(await revocationReasons(grace.id)).toEqual([null]);
      expect(await revocationEvents(grace.id)).toEqual([]);
      expect(alerts('access.probing')).toEqual([]);
      expect(await statusOf(sessions.refresh(grace.refreshToken, CLIENT_IP))).toBe(200);
    });
  });

  describe('failed logins for one account', () => {
    it('lock it and raise one login.brute_force alert naming the account and client', async () => {
      const victim = await customer();
      const statuses: number[] = [];

      for (let attempt = 0; attempt < 6 && !statuses.includes(429); attempt += 1) {
        const wrong = { email: victim.email, password: 'not the password at all' };
        statuses.push(await statusOf(accounts.login(wrong, CLIENT_IP)));
        // Past the two free failures, each attempt must wait twice as long as the last (1 s,
        // 2 s); the fourth failure locks the account.
        const waitMs = attempt === 1 || attempt === 2 ? 1100 * 2 ** (attempt - 1) : 0;
        await new Promise((resolve) => setTimeout(resolve, waitMs));
      }

      expect(statuses).toEqual([401, 401, 401, 401, 429]);
      expect(alerts('login.brute_force')).toEqual([
        {
          type: 'security.alert',
          outcome: 'denied',
          reason: 'login.brute_force',
          clientIp: CLIENT_IP,
          resourceType: 'account',
          resourceId: victim.id,
          details: { subject: 'account', failures: 4, lockoutSeconds: 900 },
        },
      ]);
    }, 30_000);
  });

  describe('a refresh token presented twice', () => {
    it('revokes the session and raises one refresh.reuse alert, however often it comes back', async () => {
      const ada = await customer();

      expect(await statusOf(sessions.refresh(ada.refreshToken, CLIENT_IP))).toBe(200);
      for (let reuse = 0; reuse < 3; reuse += 1) {
        expect(await statusOf(sessions.refresh(ada.refreshToken, CLIENT_IP))).toBe(401);
      }

      expect(await revocationReasons(ada.id)).toEqual(['refresh_reuse']);
      expect(alerts('refresh.reuse')).toEqual([
        {
          type: 'security.alert',
          outcome: 'denied',
          reason: 'refresh.reuse',
          clientIp: CLIENT_IP,
          resourceType: 'account',
          resourceId: ada.id,
          details: { sessionId: expect.any(String), action: 'session_revoked' },
        },
      ]);
    });
  });
});
