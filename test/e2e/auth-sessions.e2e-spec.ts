import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { randomBytes } from 'node:crypto';

import { Api, type ApiResponse } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';
import { LIBRARY_TEXT, decodeToken, securityEvents } from '../support/tokens';

// Some tests wait out revocations, lockouts and key refreshes on purpose.
jest.setTimeout(60_000);

/** A revoked session's tokens must be refused by every process within this long. */
const REVOCATION_DEADLINE_MS = 1000;
const PASSWORD = 'a long enough password 42';

const ERROR_SHAPE = {
  statusCode: expect.any(Number),
  error: expect.any(String),
  message: expect.anything(),
  correlationId: expect.any(String),
};

/** Milliseconds until a token was refused somewhere, or 'never' within the polling limit. */
type RefusalTimes = Record<string, number | 'never'>;

interface TokenPair {
  accessToken: string;
  refreshToken: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const uniqueEmail = (label: string): string =>
  `${label}-${randomBytes(5).toString('hex')}@example.com`;

let sequence = 0;
function correlationId(label: string): string {
  sequence += 1;
  return `${label}-${sequence}-${randomBytes(3).toString('hex')}`;
}

/** Session and login behaviour shared by both deployments of a shape. */
function authChecks(get: () => { api: Api; deployment: Deployment }) {
  async function register(label: string): Promise<{ id: string; email: string }> {
    const email = uniqueEmail(label);
    const response = await get().api.post('/auth/register', {
      body: { email, password: PASSWORD },
    });
    expect(response.status).toBe(201);
    expect(response.body).toEqual({ id: expect.any(String), email, roles: ['customer'] });
    return response.body;
  }

  async function login(email: string, password = PASSWORD): Promise<TokenPair> {
    const response = await get().api.post('/auth/login', { body: { email, password } });
    expect(response.status).toBe(200);
    return response.body;
  }

  function refresh(refreshToken: string, headers: Record<string, string> = {}) {
    return get().api.post('/auth/refresh', { body: { refreshToken }, headers });
  }

  /** An error in the one shape, free of library text. */
  function expectCleanError(response: ApiResponse, status: number): void {
    expect(response.status).toBe(status);
    expect(response.body).toEqual({ ...ERROR_SHAPE, statusCode: status });
    expect(JSON.stringify({ ...response.body, correlationId: '' })).not.toMatch(LIBRARY_TEXT);
  }

  /** The security event of a type that a request with this correlation id wrote. */
  function eventFor(id: string, type: string, process?: string) {
    const { api, deployment } = get();
    return api.eventually(() => {
      const found = securityEvents(deployment.logs(process)).find(
        (event) => event.correlationId === id && event.type === type,
      );
      return Promise.resolve(found);
    }, 2000);
  }

  /**
   * Polls a route with a token until it answers 401; resolves to how long after `since` that
   * happened and the correlation id of the refused request, or undefined after `limitMs`.
   */
  async function refusedAfter(
    token: string,
    path: string,
    since: number,
    limitMs = 3000,
  ): Promise<{ ms: number; id: string } | undefined> {
    for (;;) {
      const id = correlationId('poll');
      const response = await get().api.get(path, { token, headers: { 'x-correlation-id': id } });
      if (response.status === 401) {
        expectCleanError(response, 401);
        return { ms: Date.now() - since, id };
      }
      expect(response.status).toBe(200);
      if (Date.now() - since > limitMs) return undefined;
      await sleep(20);
    }
  }

  /** How long after `since` each token was first refused, at auth and in another app. */
  async function refusalTimes(tokens: string[], since: number): Promise<RefusalTimes> {
    const times: RefusalTimes = {};
    for (const [index, token] of tokens.entries()) {
      for (const path of ['/orders', '/auth/me']) {
        const refused = await refusedAfter(token, path, since, 2000);
        times[`token ${index + 1} at ${path}`] = refused?.ms ?? 'never';
      }
    }
    return times;
  }

  /** Every token was refused everywhere within the deadline; names the ones that were not. */
  function expectRefusedInTime(times: RefusalTimes): void {
    const late = Object.entries(times).filter(
      ([, ms]) => ms === 'never' || ms > REVOCATION_DEADLINE_MS,
    );
    expect(Object.fromEntries(late)).toEqual({});
  }

  return {
    register,
    login,
    refresh,
    expectCleanError,
    eventFor,
    refusedAfter,
    refusalTimes,
    expectRefusedInTime,
  };
}

describe.each(availableShapes())('sessions and accounts, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  let adminToken: string;
  let adminId: string;
  const h = authChecks(() => ({ api, deployment }));
  /** The process that serves /orders. */
  const ordersProcess = shape === 'split' ? 'orders' : 'platform';

  beforeAll(async () => {
    // Failed logins below are deliberate; keep them far from the limits tested elsewhere.
    deployment = await Deployment.start(shape, {
      LOGIN_ACCOUNT_FREE_FAILURES: '1000',
      LOGIN_IP_FREE_FAILURES: '100000',
    });
    api = new Api(deployment);
    adminToken = (await h.login(ADMIN.email, ADMIN.password)).accessToken;
    adminId = decodeToken(adminToken).claims.sub as string;
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  describe('refresh tokens', () => {
    it('exchanges a refresh token for a new pair in the same session', async () => {
      const account = await h.register('rotate');
      const first = await h.login(account.email);
      const second = await h.refresh(first.refreshToken);
      expect(second.status).toBe(200);
      expect(second.body).toEqual({
        accessToken: expect.any(String),
        refreshToken: expect.any(String),
        tokenType: 'Bearer',
        expiresIn: 900,
      });
      expect(second.body.refreshToken).not.toBe(first.refreshToken);
      expect(second.body.accessToken).not.toBe(first.accessToken);
      expect(decodeToken(second.body.accessToken).claims).toMatchObject({
        sub: account.id,
        sid: decodeToken(first.accessToken).claims.sid,
        roles: ['customer'],
      });
      expect((await api.get('/orders', { token: second.body.accessToken })).status).toBe(200);
      const third = await h.refresh(second.body.refreshToken);
      expect(third.status).toBe(200);
    });

    it('treats a spent refresh token as stolen: 401, and the whole session is refused everywhere', async () => {
      const account = await h.register('reuse');
      const first = await h.login(account.email);
      const other = await h.login(account.email);
      expect((await api.get('/orders', { token: first.accessToken })).status).toBe(200);
      const second = (await h.refresh(first.refreshToken)).body as TokenPair;
      expect((await api.get('/orders', { token: second.accessToken })).status).toBe(200);

      const unknown = await h.refresh(randomBytes(32).toString('base64url'));
      const id = correlationId('reuse');
      const reused = await h.refresh(first.refreshToken, { 'x-correlation-id': id });
      const revokedAt = Date.now();
      const times = await h.refusalTimes([second.accessToken, first.accessToken], revokedAt);

      h.expectCleanError(reused, 401);
      expect({ ...reused.body, correlationId: '' }).toEqual({
        ...unknown.body,
        correlationId: '',
      });
      expect(await h.eventFor(id, 'auth.refresh_reuse_detected')).toMatchObject({
        outcome: 'denied',
        actorId: account.id,
      });
      h.expectCleanError(await h.refresh(second.refreshToken), 401);
      // Another session of the same account is not the one that leaked.
      expect((await api.get('/auth/me', { token: other.accessToken })).status).toBe(200);
      expect((await h.refresh(other.refreshToken)).status).toBe(200);
      h.expectRefusedInTime(times);
    });

    it.each([2, 5])(
      'lets exactly one of %i concurrent refreshes with one token succeed',
      async (n) => {
        const account = await h.register('race');
        const pair = await h.login(account.email);
        const answers = await Promise.all(
          Array.from({ length: n }, () => h.refresh(pair.refreshToken)),
        );
        const statuses = answers.map((answer) => answer.status).sort();
        expect(statuses).toEqual([200, ...Array<number>(n - 1).fill(401)]);
        for (const answer of answers.filter((a) => a.status !== 200))
          h.expectCleanError(answer, 401);
      },
    );

    it('refuses unknown, malformed and missing refresh tokens without saying why', async () => {
      const account = await h.register('badrefresh');
      const pair = await h.login(account.email);
      const unknown = await h.refresh(randomBytes(32).toString('base64url'));
      h.expectCleanError(unknown, 401);
      const accessAsRefresh = await h.refresh(pair.accessToken.slice(0, 128));
      h.expectCleanError(accessAsRefresh, 401);
      expect(accessAsRefresh.body.message).toBe(unknown.body.message);
      h.expectCleanError(await api.post('/auth/refresh', { body: {} }), 400);
      h.expectCleanError(await api.post('/auth/refresh', { body: { refreshToken: 42 } }), 400);
      h.expectCleanError(await h.refresh('x'.repeat(129)), 400);
      // None of that spent or revoked the real one.
      expect((await h.refresh(pair.refreshToken)).status).toBe(200);
    });
  });

  describe('logout', () => {
    it('ends the session: its token is refused by another app within 1 s', async () => {
      const account = await h.register('logout');
      const pair = await h.login(account.email);
      const other = await h.login(account.email);
      expect((await api.get('/orders', { token: pair.accessToken })).status).toBe(200);
      expect((await api.get('/auth/me', { token: pair.accessToken })).status).toBe(200);

      const loggedOut = await api.post('/auth/logout', { token: pair.accessToken });
      const since = Date.now();
      expect(loggedOut.status).toBe(204);
      expect(loggedOut.body).toBe('');

      const refused = await h.refusedAfter(pair.accessToken, '/orders', since);
      console.log(
        `[${shape}] logout -> first 401 from ${ordersProcess} for GET /orders: ` +
          (refused ? `${refused.ms} ms` : 'none within 3000 ms'),
      );
      const times = await h.refusalTimes([pair.accessToken], since);

      h.expectCleanError(await h.refresh(pair.refreshToken), 401);
      expect((await api.get('/auth/me', { token: other.accessToken })).status).toBe(200);
      expect(refused).toBeDefined();
      expect(refused!.ms).toBeLessThanOrEqual(REVOCATION_DEADLINE_MS);
      // The refusal was the orders process's own decision.
      expect(await h.eventFor(refused!.id, 'auth.token_rejected', ordersProcess)).toMatchObject({
        reason: 'session_revoked',
      });
      h.expectRefusedInTime(times);
      h.expectCleanError(await api.post('/auth/logout', { token: pair.accessToken }), 401);
    });

    it('needs a token', async () => {
      h.expectCleanError(await api.post('/auth/logout'), 401);
    });
  });

  describe('roles', () => {
    const setRoles = (id: string, roles: unknown, token = adminToken) =>
      api.request('PATCH', `/auth/users/${id}/roles`, { token, body: { roles } });

    it('applies a promotion and a demotion at once; the next login carries the new roles', async () => {
      const account = await h.register('promoted');
      const asCustomer = (await h.login(account.email)).accessToken;
      expect((await api.get('/orders', { token: asCustomer })).status).toBe(200);
      h.expectCleanError(await api.get('/auth/users', { token: asCustomer }), 403);

      const promoted = await setRoles(account.id, ['customer', 'admin']);
      const promotedAt = Date.now();
      const afterPromotion = await h.refusalTimes([asCustomer], promotedAt);
      expect(promoted.status).toBe(200);
      expect(promoted.body).toEqual({ ...account, roles: ['customer', 'admin'] });

      const asAdmin = (await h.login(account.email)).accessToken;
      expect(decodeToken(asAdmin).claims.roles).toEqual(['customer', 'admin']);
      const me = await api.get('/auth/me', { token: asAdmin });
      expect(me.body).toEqual({ ...account, roles: ['customer', 'admin'] });
      expect((await api.get('/auth/users', { token: asAdmin })).status).toBe(200);

      const demoted = await setRoles(account.id, ['customer']);
      const demotedAt = Date.now();
      const afterDemotion = await h.refusalTimes([asAdmin], demotedAt);
      expect(demoted.status).toBe(200);
      expect(demoted.body).toEqual(account);
      const again = (await h.login(account.email)).accessToken;
      expect((await api.get('/auth/me', { token: again })).body.roles).toEqual(['customer']);
      h.expectCleanError(await api.get('/auth/users', { token: again }), 403);

      h.expectRefusedInTime(afterPromotion);
      h.expectRefusedInTime(afterDemotion);
    });

    it('never takes the admin role from the last admin', async () => {
      // Whatever an earlier test left behind, the bootstrap admin is made the only admin.
      const everyone = await api.get('/auth/users?limit=100', { token: adminToken });
      for (const other of everyone.body.items as Array<{ id: string; roles: string[] }>) {
        if (other.id !== adminId && other.roles.includes('admin')) {
          expect((await setRoles(other.id, ['customer'])).status).toBe(200);
        }
      }
      const refused = await setRoles(adminId, ['customer']);
      h.expectCleanError(refused, 409);
      const me = await api.get('/auth/me', { token: adminToken });
      expect(me.status).toBe(200);
      expect(me.body.roles).toContain('admin');
      expect((await api.get('/auth/users', { token: adminToken })).status).toBe(200);
    });

    it('lets only admins change roles, to known roles, and changes nothing otherwise', async () => {
      const account = await h.register('climber');
      const token = (await h.login(account.email)).accessToken;
      h.expectCleanError(await setRoles(account.id, ['admin'], token), 403);
      h.expectCleanError(await setRoles(account.id, ['superuser']), 400);
      h.expectCleanError(await setRoles(account.id, []), 400);
      h.expectCleanError(await setRoles('00000000-0000-4000-8000-000000000000', ['admin']), 404);
      h.expectCleanError(await setRoles('not-an-id', ['admin']), 400);
      const me = await api.get('/auth/me', { token });
      expect(me.status).toBe(200);
      expect(me.body.roles).toEqual(['customer']);
    });
  });

  describe('administration', () => {
    it('revokes every session of an account at once', async () => {
      const account = await h.register('revoked');
      const sessions = [await h.login(account.email), await h.login(account.email)];
      for (const { accessToken } of sessions) {
        expect((await api.get('/orders', { token: accessToken })).status).toBe(200);
      }
      h.expectCleanError(
        await api.request('DELETE', `/auth/users/${account.id}/sessions`, {
          token: sessions[0].accessToken,
        }),
        403,
      );
      expect((await api.get('/auth/me', { token: sessions[0].accessToken })).status).toBe(200);

      const revoked = await api.request('DELETE', `/auth/users/${account.id}/sessions`, {
        token: adminToken,
      });
      const revokedAt = Date.now();
      const times = await h.refusalTimes(
        sessions.map((s) => s.accessToken),
        revokedAt,
      );
      expect(revoked.status).toBe(204);
      for (const { refreshToken } of sessions)
        h.expectCleanError(await h.refresh(refreshToken), 401);
      const fresh = await h.login(account.email);
      expect((await api.get('/orders', { token: fresh.accessToken })).status).toBe(200);
      h.expectCleanError(
        await api.request('DELETE', '/auth/users/00000000-0000-4000-8000-000000000000/sessions', {
          token: adminToken,
        }),
        404,
      );
      h.expectRefusedInTime(times);
    });

    it('lists accounts a page at a time, to admins only', async () => {
      await h.register('listed');
      await h.register('listed');
      const all = await api.get('/auth/users?limit=100', { token: adminToken });
      expect(all.status).toBe(200);
      expect(all.body).toEqual({
        items: expect.any(Array),
        total: all.body.items.length,
        limit: 100,
        offset: 0,
      });
      expect(all.body.total).toBeGreaterThanOrEqual(3);
      for (const item of all.body.items) {
        expect(Object.keys(item).sort()).toEqual(['email', 'id', 'roles']);
      }
      expect(all.body.items.map((a: { email: string }) => a.email)).toContain(ADMIN.email);

      const first = await api.get('/auth/users?limit=2&offset=0', { token: adminToken });
      const second = await api.get('/auth/users?limit=2&offset=2', { token: adminToken });
      expect(first.body).toMatchObject({ total: all.body.total, limit: 2, offset: 0 });
      expect(first.body.items).toEqual(all.body.items.slice(0, 2));
      expect(second.body.items).toEqual(all.body.items.slice(2, 4));
      const beyond = await api.get(`/auth/users?offset=${all.body.total}`, { token: adminToken });
      expect(beyond.body).toMatchObject({ items: [], total: all.body.total });

      for (const query of ['limit=0', 'limit=101', 'offset=-1', 'limit=abc', 'limit=1.5']) {
        h.expectCleanError(await api.get(`/auth/users?${query}`, { token: adminToken }), 400);
      }
      const customer = (await h.login((await h.register('nosy')).email)).accessToken;
      h.expectCleanError(await api.get('/auth/users', { token: customer }), 403);
      h.expectCleanError(await api.get('/auth/users'), 401);
    });
  });

  describe('login answers', () => {
    it('answers an unknown email and a wrong password alike, in comparable time', async () => {
      const account = await h.register('enum');
      const timed = async (email: string, password: string) => {
        const started = performance.now();
        const response = await api.post('/auth/login', { body: { email, password } });
        return { response, ms: performance.now() - started };
      };
      const unknown: number[] = [];
      const wrong: number[] = [];
      for (let i = 0; i < 15; i++) {
        const a = await timed(uniqueEmail('nobody'), 'not the right password');
        const b = await timed(account.email, 'not the right password');
        for (const { response } of [a, b]) h.expectCleanError(response, 401);
        expect({ ...a.response.body, correlationId: '' }).toEqual({
          ...b.response.body,
          correlationId: '',
        });
        expect(a.response.headers.get('content-type')).toBe(b.response.headers.get('content-type'));
        unknown.push(a.ms);
        wrong.push(b.ms);
      }
      const median = (values: number[]) => [...values].sort((x, y) => x - y)[values.length >> 1];
      const ratio = median(unknown) / median(wrong);
      console.log(
        `[${shape}] login medians: unknown email ${median(unknown).toFixed(1)} ms, ` +
          `wrong password ${median(wrong).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`,
      );
      expect(ratio).toBeGreaterThan(0.5);
      expect(ratio).toBeLessThan(2);
      // The account was not harmed by the failures.
      expect((await h.login(account.email)).accessToken).toEqual(expect.any(String));
    });
  });
});

describe.each(availableShapes())('login limits, %s shape', (shape) => {
  let deployment: Deployment;
  let api: Api;
  const h = authChecks(() => ({ api, deployment }));
  const LIMITS = { account: 2, ip: 8, lockoutSeconds: 2 };
  const FORGED_ORIGINS: Array<Record<string, string>> = [
    { 'x-forwarded-for': '1.2.3.4' },
    { 'x-forwarded-for': '1.2.3.4, 5.6.7.8' },
    { 'x-real-ip': '1.2.3.4' },
    { forwarded: 'for=1.2.3.4' },
  ];

  beforeAll(async () => {
    deployment = await Deployment.start(shape, {
      LOGIN_ACCOUNT_FREE_FAILURES: String(LIMITS.account),
      LOGIN_IP_FREE_FAILURES: String(LIMITS.ip),
      LOGIN_LOCKOUT_SECONDS: String(LIMITS.lockoutSeconds),
      LOGIN_WINDOW_SECONDS: '900',
    });
    api = new Api(deployment);
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
  });

  const attempt = (email: string, password: string, headers: Record<string, string> = {}) =>
    api.post('/auth/login', { body: { email, password }, headers });

  /** A 429 in the one error shape, with a Retry-After of whole seconds; returns them. */
  function expectRetryLater(response: ApiResponse, maxSeconds: number): number {
    h.expectCleanError(response, 429);
    const retryAfter = response.headers.get('retry-after');
    expect(retryAfter).toMatch(/^\d+$/);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(retryAfter)).toBeLessThanOrEqual(maxSeconds);
    return Number(retryAfter);
  }

  it('slows, then locks an account; the lockout ends, and a right password then works', async () => {
    const { email } = await h.register('locked');
    const wrong = 'not the right password';
    expect((await attempt(email, wrong)).status).toBe(401);
    expect((await attempt(email, wrong)).status).toBe(401);

    // Past the free failures: even the right password must wait.
    let wait = expectRetryLater(await attempt(email, wrong), 1);
    expectRetryLater(await attempt(email, PASSWORD), 1);
    await sleep(wait * 1000 + 100);
    expect((await attempt(email, wrong)).status).toBe(401);
    wait = expectRetryLater(await attempt(email, PASSWORD), LIMITS.lockoutSeconds);
    await sleep(wait * 1000 + 100);

    const id = correlationId('lockout');
    expect((await attempt(email, wrong, { 'x-correlation-id': id })).status).toBe(401);
    expect(await h.eventFor(id, 'auth.lockout')).toMatchObject({ outcome: 'denied' });
    wait = expectRetryLater(await attempt(email, PASSWORD), LIMITS.lockoutSeconds);
    for (const headers of FORGED_ORIGINS) {
      expectRetryLater(await attempt(email, PASSWORD, headers), LIMITS.lockoutSeconds);
    }

    await sleep(wait * 1000 + 200);
    const admitted = await attempt(email, PASSWORD);
    expect(admitted.status).toBe(200);
    expect(admitted.body.tokenType).toBe('Bearer');
    // Success cleared the account's count: one more failure is an ordinary 401.
    expect((await attempt(email, wrong)).status).toBe(401);
    expect((await attempt(email, PASSWORD)).status).toBe(200);
  });

  it('counts failed refreshes per client IP, whatever X-Forwarded-For claims', async () => {
    const { email } = await h.register('refresher');
    const pair = await h.login(email);
    let throttled: ApiResponse | undefined;
    for (let i = 0; i <= LIMITS.ip && !throttled; i++) {
      const response = await h.refresh(randomBytes(32).toString('base64url'));
      if (response.status === 429) throttled = response;
      else h.expectCleanError(response, 401);
    }
    expect(throttled).toBeDefined();
    expectRetryLater(throttled!, LIMITS.lockoutSeconds);
    for (const headers of FORGED_ORIGINS) {
      expectRetryLater(await h.refresh(pair.refreshToken, headers), LIMITS.lockoutSeconds);
    }
  });

  it('counts failed logins per client IP, whatever X-Forwarded-For claims', async () => {
    const { email } = await h.register('innocent');
    let throttled: ApiResponse | undefined;
    for (let i = 0; i <= LIMITS.ip && !throttled; i++) {
      const response = await attempt(uniqueEmail('spray'), 'password spraying 1');
      if (response.status === 429) throttled = response;
      else h.expectCleanError(response, 401);
    }
    expect(throttled).toBeDefined();
    expectRetryLater(throttled!, LIMITS.lockoutSeconds);
    // Sent at once, inside the wait: a trusted header would make each look like a new client.
    const ids: string[] = [];
    for (const headers of FORGED_ORIGINS) {
      ids.push(correlationId('forwarded'));
      const forged = { ...headers, 'x-correlation-id': ids[ids.length - 1] };
      expectRetryLater(
        await attempt(uniqueEmail('spray'), 'password spraying 1', forged),
        LIMITS.lockoutSeconds,
      );
      expectRetryLater(await attempt(email, PASSWORD, headers), LIMITS.lockoutSeconds);
    }
    for (const id of ids) {
      expect(await h.eventFor(id, 'auth.attempt_throttled')).toMatchObject({ outcome: 'denied' });
    }
  });
});
