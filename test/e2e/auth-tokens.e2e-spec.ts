import { afterAll, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { type Server, createServer } from 'node:http';
import { type AddressInfo } from 'node:net';

import { type JWTVerifyGetKey, createRemoteJWKSet, jwtVerify } from 'jose';

import { Api } from '../support/api';
import { ADMIN, Deployment, availableShapes } from '../support/deployment';
import {
  type Claims,
  DEFAULT_AUDIENCE,
  DEFAULT_ISSUER,
  type Header,
  LIBRARY_TEXT,
  accessClaims,
  compact,
  decodeToken,
  publicKeyFromJwk,
  rsaKey,
  securityEvents,
  signHs256,
  signRs256,
} from '../support/tokens';

// Some tests wait out revocations, lockouts and key refreshes on purpose.
jest.setTimeout(60_000);

/** Revocations and key withdrawals must reach every process within this long. */
const KEY_WITHDRAWAL_DEADLINE_MS = 1500;

const ORDER_BODY = { items: [{ sku: 'KEY-001', quantity: 1 }] };

let sequence = 0;
/** A fresh correlation id, so each request's security event can be found in the logs. */
function correlationId(label: string): string {
  sequence += 1;
  return `${label}-${sequence}-${Math.random().toString(36).slice(2, 8)}`;
}

describe.each(availableShapes())('access tokens under attack, %s shape', (shape) => {
  /** Placed in SECRETS_DIR before start: auth signs with it, so the test can sign as auth. */
  const operatorKey = rsaKey();
  const attackerKey = rsaKey();
  let deployment: Deployment;
  let api: Api;
  let victim: { id: string; email: string; token: string; sid: string };
  let adminToken: string;
  let refusalMessage: string;
  /** Requests a token's own `jku`/`x5u` made the services send: there must be none. */
  const keyServerHits: string[] = [];
  let keyServer: Server;
  let keyServerUrl: string;

  beforeAll(async () => {
    keyServer = createServer((request, response) => {
      keyServerHits.push(`${request.method} ${request.url}`);
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [{ ...attackerKey.publicJwk, kid: attackerKey.kid }] }));
    });
    await new Promise<void>((resolve) => keyServer.listen(0, '127.0.0.1', resolve));
    keyServerUrl = `http://127.0.0.1:${(keyServer.address() as AddressInfo).port}`;

    deployment = await Deployment.start(shape, {}, { 'token-signing.key': operatorKey.privatePem });
    api = new Api(deployment);
    const customer = await api.customer('victim');
    victim = { ...customer, sid: decodeToken(customer.token).claims.sid as string };
    adminToken = await api.login(ADMIN.email, ADMIN.password);
    refusalMessage = (await api.get('/orders')).body.message;
  }, 120_000);

  afterAll(async () => {
    await deployment?.stop();
    await new Promise((resolve) => keyServer?.close(resolve));
  });

  /** Claims an attacker would like: the victim's identity, plus admin. */
  function wishfulClaims(overrides: Claims = {}): Claims {
    return {
      ...accessClaims({ sub: victim.id, sid: victim.sid, roles: ['customer', 'admin'] }),
      ...overrides,
    };
  }

  const rs256 = (header: Header = {}, claims: Claims = wishfulClaims()): string =>
    signRs256(operatorKey.privateKey, { alg: 'RS256', typ: 'JWT', ...header }, claims);

  async function publishedJwk(): Promise<{ kty: string; n: string; e: string; kid: string }> {
    const jwks = await api.get('/.well-known/jwks.json');
    return jwks.body.keys.find((key: { kid: string }) => key.kid === operatorKey.kid);
  }

  /** A 401 in the one error shape, with the one message, and nothing a library wrote. */
  function expectCleanRefusal(response: { status: number; body: any }, id: string): void {
    expect(response.status).toBe(401);
    expect(response.body).toEqual({
      statusCode: 401,
      error: 'Unauthorized',
      message: refusalMessage,
      correlationId: id,
    });
    expect(JSON.stringify({ ...response.body, correlationId: '' })).not.toMatch(LIBRARY_TEXT);
  }

  /** The security event a request with this correlation id wrote, once it is in the log. */
  async function eventFor(id: string, type = 'auth.token_rejected') {
    return api.eventually(async () => {
      const found = securityEvents(deployment.logs()).find(
        (event) => event.correlationId === id && event.type === type,
      );
      return Promise.resolve(found);
    }, 2000);
  }

  /**
   * Sends the token to auth and to another app, reading and writing: each answers the same
   * clean 401 and records why; the victim's data is untouched.
   */
  async function expectRefusedEverywhere(token: string, reason?: string): Promise<void> {
    const attempts: Array<[string, string]> = [
      ['GET', '/auth/me'],
      ['GET', '/orders'],
      ['POST', '/orders'],
      ['GET', '/auth/users'],
    ];
    for (const [method, path] of attempts) {
      const id = correlationId('forged');
      const response = await api.request(method, path, {
        token,
        headers: { 'x-correlation-id': id, 'idempotency-key': id },
        body: method === 'POST' ? ORDER_BODY : undefined,
      });
      expectCleanRefusal(response, id);
      const event = await eventFor(id);
      expect(event).toMatchObject({ type: 'auth.token_rejected', outcome: 'denied' });
      if (reason) expect(event.reason).toBe(reason);
    }
    const orders = await api.get('/orders', { token: victim.token });
    expect(orders.status).toBe(200);
    expect(orders.body).toEqual([]);
  }

  it('signs with the key placed in SECRETS_DIR, so a token signed here is genuine', async () => {
    expect(decodeToken(victim.token).header).toMatchObject({ alg: 'RS256', kid: operatorKey.kid });
    expect(await publishedJwk()).toMatchObject({ ...operatorKey.publicJwk, kty: 'RSA' });

    const genuine = rs256(
      { kid: operatorKey.kid },
      accessClaims({ sub: victim.id, sid: victim.sid, roles: ['customer'] }),
    );
    const me = await api.get('/auth/me', { token: genuine });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ id: victim.id, email: victim.email, roles: ['customer'] });
    expect((await api.get('/orders', { token: genuine })).status).toBe(200);
  });

  describe('algorithm confusion', () => {
    it.each(['none', 'None', 'NONE', 'nOnE'])(
      'refuses alg %s, with and without a signature',
      async (alg) => {
        const claims = wishfulClaims();
        const header = { alg, typ: 'JWT', kid: operatorKey.kid };
        const realSignature = rs256({ kid: operatorKey.kid }, claims).split('.')[2];
        await expectRefusedEverywhere(compact(header, claims, ''));
        await expectRefusedEverywhere(compact(header, claims, realSignature));
        await expectRefusedEverywhere(compact({ alg, typ: 'JWT' }, claims, ''));
      },
    );

    it.each([
      ['the SPKI PEM', (jwk: any) => publicKeyFromJwk(jwk).export({ type: 'spki', format: 'pem' })],
      [
        'the PKCS#1 PEM',
        (jwk: any) => publicKeyFromJwk(jwk).export({ type: 'pkcs1', format: 'pem' }),
      ],
      ['the JWK as published', (jwk: any) => JSON.stringify(jwk)],
      ['the modulus', (jwk: any) => Buffer.from(jwk.n, 'base64url')],
    ])('refuses HS256 keyed with %s of the real public key', async (_form, secretOf) => {
      const secret = secretOf(await publishedJwk());
      for (const alg of ['HS256', 'HS512']) {
        const header = { alg, typ: 'JWT', kid: operatorKey.kid };
        await expectRefusedEverywhere(signHs256(secret, header, wishfulClaims()));
      }
    });
  });

  describe('keys named by the token', () => {
    it('refuses a token carrying its own key in `jwk`, whatever kid it names', async () => {
      const jwk = { ...attackerKey.publicJwk, kid: attackerKey.kid };
      for (const kid of [attackerKey.kid, operatorKey.kid]) {
        const header = { alg: 'RS256', typ: 'JWT', kid, jwk };
        await expectRefusedEverywhere(signRs256(attackerKey.privateKey, header, wishfulClaims()));
      }
    });

    it('refuses `jku` and `x5u` pointing at a key server, and never fetches from it', async () => {
      for (const extra of [
        { jku: `${keyServerUrl}/jwks.json` },
        { x5u: `${keyServerUrl}/cert.pem` },
      ]) {
        for (const kid of [attackerKey.kid, operatorKey.kid]) {
          const header = { alg: 'RS256', typ: 'JWT', kid, ...extra };
          await expectRefusedEverywhere(signRs256(attackerKey.privateKey, header, wishfulClaims()));
        }
      }
      expect(keyServerHits).toEqual([]);
    });

    it('refuses a token signed by a key auth never published', async () => {
      const header = { alg: 'RS256', typ: 'JWT', kid: attackerKey.kid };
      await expectRefusedEverywhere(signRs256(attackerKey.privateKey, header, wishfulClaims()));
    });
  });

  describe('odd kid values on a token signed with the real key', () => {
    it.each<[string, Header]>([
      ['no kid', {}],
      ['an empty kid', { kid: '' }],
      ['a path', { kid: '../../etc/passwd' }],
      ['a very long kid', { kid: 'k'.repeat(4000) }],
      ['an SQL fragment', { kid: "' OR 1=1--" }],
      ['a number', { kid: 1 }],
      ['an object', { kid: { $ne: null } }],
      ['null', { kid: null }],
      ['a list holding the real kid', { kid: [operatorKey.kid] }],
    ])('refuses %s', async (_label, header) => {
      await expectRefusedEverywhere(rs256(header));
    });
  });

  describe('claims', () => {
    const now = (): number => Math.floor(Date.now() / 1000);

    it('refuses an expired token', async () => {
      const claims = wishfulClaims({ iat: now() - 600, exp: now() - 120 });
      await expectRefusedEverywhere(rs256({ kid: operatorKey.kid }, claims), 'expired');
    });

    it('refuses a token that is not valid yet (nbf in the future)', async () => {
      const claims = wishfulClaims({ nbf: now() + 600 });
      await expectRefusedEverywhere(rs256({ kid: operatorKey.kid }, claims), 'not_yet_valid');
    });

    it('refuses a token without exp', async () => {
      const claims = wishfulClaims();
      delete claims.exp;
      await expectRefusedEverywhere(rs256({ kid: operatorKey.kid }, claims));
    });

    it.each<[string, Claims]>([
      ['another issuer', { iss: 'https://evil.example' }],
      ['no issuer', { iss: undefined }],
      ['another audience', { aud: 'urn:portcullis:other' }],
      ['no audience', { aud: undefined }],
      ['a subject that is not an account id', { sub: 'admin' }],
      ['a role that does not exist', { roles: ['customer', 'superuser'] }],
      ['a lifetime longer than auth ever issues', { iat: now() - 3600, exp: now() + 60 }],
    ])('refuses %s', async (_label, overrides) => {
      const claims = JSON.parse(JSON.stringify(wishfulClaims(overrides))) as Claims;
      await expectRefusedEverywhere(rs256({ kid: operatorKey.kid }, claims));
    });
  });

  describe('signatures', () => {
    it('refuses a real token whose payload was changed to claim admin', async () => {
      const [header, payload, signature] = victim.token.split('.');
      const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Claims;
      const forged = Buffer.from(JSON.stringify({ ...claims, roles: ['admin'] })).toString(
        'base64url',
      );
      await expectRefusedEverywhere(`${header}.${forged}.${signature}`);
      expect((await api.get('/auth/me', { token: victim.token })).body.roles).toEqual(['customer']);
    });

    it('refuses truncated, garbage, empty and borrowed signatures', async () => {
      const [header, payload, signature] = victim.token.split('.');
      const adminSignature = adminToken.split('.')[2];
      for (const bad of [
        signature.slice(0, -8),
        signature.slice(0, 100),
        Buffer.alloc(256, 7).toString('base64url'),
        'not-a-signature',
        '',
        adminSignature,
      ]) {
        await expectRefusedEverywhere(`${header}.${payload}.${bad}`);
      }
      await expectRefusedEverywhere(`${header}.${payload}`);
      await expectRefusedEverywhere(`${header}.${payload}.${signature}.extra`);
    });
  });

  describe('signing key rotation', () => {
    let jwks: JWTVerifyGetKey;
    let jwksUri: string;
    let rotatedKid: string;

    async function verifyWithJose(token: string) {
      return jwtVerify(token, jwks, {
        issuer: DEFAULT_ISSUER,
        audience: DEFAULT_AUDIENCE,
        algorithms: ['RS256'],
      });
    }

    it('lets an off-the-shelf relying party verify a real token from the discovery document', async () => {
      const discovery = await api.get('/.well-known/openid-configuration');
      expect(discovery.status).toBe(200);
      expect(discovery.body.issuer).toBe(DEFAULT_ISSUER);
      jwksUri = discovery.body.jwks_uri;
      expect(jwksUri).toBe(deployment.urlFor('/.well-known/jwks.json'));
      // A relying party that meets an unknown kid refetches at once rather than after 30 s.
      jwks = createRemoteJWKSet(new URL(jwksUri), { cooldownDuration: 0 });
      const { payload, protectedHeader } = await verifyWithJose(victim.token);
      expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: operatorKey.kid });
      expect(payload).toMatchObject({ sub: victim.id, sid: victim.sid, roles: ['customer'] });
    });

    it('rotates only for admins', async () => {
      const customer = await api.post('/auth/keys/rotate', { token: victim.token, body: {} });
      expect(customer.status).toBe(403);
      expect(customer.body).toMatchObject({ statusCode: 403, error: 'Forbidden' });
      const keys = await api.get('/.well-known/jwks.json');
      expect(keys.body.keys.map((key: { kid: string }) => key.kid)).toEqual([operatorKey.kid]);
    });

    it('keeps tokens of the previous key working after a rotation', async () => {
      const rotated = await api.post('/auth/keys/rotate', { token: adminToken, body: {} });
      expect(rotated.status).toBe(200);
      expect(rotated.body).toEqual({ kid: expect.any(String), withdrawnKids: [] });
      rotatedKid = rotated.body.kid;
      expect(rotatedKid).not.toBe(operatorKey.kid);

      const kids = (await api.get('/.well-known/jwks.json')).body.keys.map(
        (key: { kid: string }) => key.kid,
      );
      expect(kids.sort()).toEqual([operatorKey.kid, rotatedKid].sort());

      // Issued before the rotation, and one the services have never seen: both still verify.
      const neverSeen = rs256(
        { kid: operatorKey.kid },
        accessClaims({ sub: victim.id, sid: victim.sid, roles: ['customer'] }),
      );
      for (const token of [victim.token, neverSeen]) {
        expect((await api.get('/orders', { token })).status).toBe(200);
        expect((await api.get('/auth/me', { token })).status).toBe(200);
      }
      expect((await verifyWithJose(victim.token)).protectedHeader.kid).toBe(operatorKey.kid);
    });

    it('signs new tokens with the new key, and every app accepts them at once', async () => {
      const fresh = await api.login(victim.email, 'a long enough password 42');
      const issuedAt = Date.now();
      expect(decodeToken(fresh).header.kid).toBe(rotatedKid);
      const after = await verifyWithJose(fresh);
      expect(after.protectedHeader.kid).toBe(rotatedKid);
      expect(after.payload.sub).toBe(victim.id);

      const firstAnswers: Record<string, number> = {};
      for (const path of ['/orders', '/auth/me']) {
        firstAnswers[path] = (await api.get(path, { token: fresh })).status;
      }
      for (const [path, status] of Object.entries(firstAnswers)) {
        if (status === 200) continue;
        const acceptedAt = await api
          .eventually(async () => {
            const response = await api.get(path, { token: fresh });
            return response.status === 200 ? Date.now() : undefined;
          }, 10_000)
          .catch(() => undefined);
        console.log(
          `[${shape}] new-key token at ${path}: ${status} at first, ` +
            (acceptedAt ? `accepted ${acceptedAt - issuedAt} ms after issue` : 'for 10 s'),
        );
      }
      expect(firstAnswers).toEqual({ '/orders': 200, '/auth/me': 200 });
    });

    it('withdraws the previous key at once when asked: its tokens are refused everywhere', async () => {
      const password = 'a long enough password 42';
      const used = await api.login(victim.email, password);
      const unused = await api.login(victim.email, password);
      expect(decodeToken(used).header.kid).toBe(rotatedKid);
      // Every app knows the key and has verified (and remembered) one of its tokens.
      for (const path of ['/orders', '/auth/me']) {
        await api.eventually(async () => {
          const response = await api.get(path, { token: used });
          return response.status === 200 ? true : undefined;
        }, 10_000);
      }

      const rotated = await api.post('/auth/keys/rotate', {
        token: adminToken,
        body: { withdrawPrevious: true },
      });
      const withdrawnAt = Date.now();
      expect(rotated.status).toBe(200);
      expect(rotated.body).toEqual({
        kid: expect.any(String),
        withdrawnKids: expect.arrayContaining([rotatedKid]),
      });
      const kids = (await api.get('/.well-known/jwks.json')).body.keys.map(
        (key: { kid: string }) => key.kid,
      );
      expect(kids).not.toContain(rotatedKid);
      expect(kids).toContain(rotated.body.kid);

      const times: Record<string, number | 'never'> = {};
      for (const [label, token] of [
        ['a token already verified', used],
        ['a token never seen', unused],
      ] as const) {
        for (const path of ['/orders', '/auth/me']) {
          const refusedAt = await api
            .eventually(async () => {
              const response = await api.get(path, { token });
              return response.status === 401 ? Date.now() : undefined;
            }, 3000)
            .catch(() => undefined);
          times[`${label} at ${path}`] =
            refusedAt === undefined ? 'never' : refusedAt - withdrawnAt;
        }
      }
      console.log(`[${shape}] withdrawn key, ms until refused:`, times);
      const late = Object.entries(times).filter(
        ([, ms]) => ms === 'never' || ms > KEY_WITHDRAWAL_DEADLINE_MS,
      );
      expect(Object.fromEntries(late)).toEqual({});

      const id = correlationId('withdrawn');
      const response = await api.get('/orders', {
        token: unused,
        headers: { 'x-correlation-id': id },
      });
      expectCleanRefusal(response, id);

      // A leak withdraws every key that still verified, the first one included.
      expect((await api.get('/orders', { token: victim.token })).status).toBe(401);
    });
  });
});
