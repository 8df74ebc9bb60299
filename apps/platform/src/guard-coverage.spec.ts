import { jest } from '@jest/globals';
import { ForbiddenException, Logger, type Type, UnauthorizedException } from '@nestjs/common';
import { METHOD_METADATA, MODULE_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { Reflector } from '@nestjs/core';
import { PATTERN_METADATA } from '@nestjs/microservices/constants';

import { SecurityEvents } from '@portcullis/audit';
import { loadConfig } from '@portcullis/core';
import {
  AccessGuard,
  AccessTokenStrategy,
  RevocationList,
  VerifiedTokenCache,
} from '@portcullis/security';
import type { TokenKeyStore } from '@portcullis/security';

import { fakeRequest, httpContext, rpcContext } from '../../../jest/execution-contexts';
// Not part of the library barrels: only the bootstrap and the security module register them,
// and this suite walks them.
import { CoreModule } from '../../../libs/core/src/bootstrap/core.module';
import { RevocationListener } from '../../../libs/security/src/revocation.listener';
import { AuthModule } from '../../auth/src/auth.module';
import { BillingModule } from '../../billing/src/billing.module';
import { OrdersModule } from '../../orders/src/orders.module';

/**
 * The only routes anyone may call without a token. A route that is public but missing here
 * fails this suite: making a route public is a decision to write down, not a side effect.
 */
const PUBLIC_ROUTES = new Set([
  'GET /health',
  'GET /metrics',
  'GET /products',
  'POST /auth/register',
  'POST /auth/login',
  'POST /auth/refresh',
  'GET /.well-known/jwks.json',
  'GET /.well-known/openid-configuration',
]);

const HTTP_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'ALL', 'OPTIONS', 'HEAD', 'SEARCH'];

interface Handler {
  readonly controller: Type;
  readonly name: string;
  readonly method: () => void;
}

/** Every controller that the three apps, the core module and the security module register. */
function allControllers(): Type[] {
  const core = CoreModule.forRoot(loadConfig({}), ['auth', 'orders', 'billing']);
  const modules = [AuthModule, OrdersModule, BillingModule];
  return [
    ...(core.controllers ?? []),
    RevocationListener,
    ...modules.flatMap(
      (module) => (Reflect.getMetadata(MODULE_METADATA.CONTROLLERS, module) as Type[]) ?? [],
    ),
  ];
}

function handlersOf(controller: Type): Handler[] {
  const prototype = controller.prototype as Record<string, unknown>;
  return Object.getOwnPropertyNames(prototype)
    .filter((name) => name !== 'constructor' && typeof prototype[name] === 'function')
    .map((name) => ({ controller, name, method: prototype[name] as () => void }));
}

function routeOf(handler: Handler): string | undefined {
  const path = Reflect.getMetadata(PATH_METADATA, handler.method) as string | undefined;
  const verb = Reflect.getMetadata(METHOD_METADATA, handler.method) as number | undefined;
  if (path === undefined || verb === undefined) return undefined;
  const base = Reflect.getMetadata(PATH_METADATA, handler.controller) as string | undefined;
  const joined = [base, path].filter((part) => part && part !== '/').join('/');
  return `${HTTP_METHODS[verb]} /${joined.replace(/^\/+/, '')}`;
}

function isMessageHandler(handler: Handler): boolean {
  return Reflect.getMetadata(PATTERN_METADATA, handler.method) !== undefined;
}

describe('the global guard over every handler of every app', () => {
  const handlers = allControllers().flatMap(handlersOf);
  const routes = handlers.flatMap((h) => {
    const route = routeOf(h);
    return route ? [{ route, handler: h }] : [];
  });
  const messageHandlers = handlers.filter(isMessageHandler);
  let guard: AccessGuard;
  let tokens: VerifiedTokenCache;
  let strategy: AccessTokenStrategy;

  beforeAll(() => {
    const config = loadConfig({});
    const keys = {
      keyForToken: () => Promise.reject(new Error('no keys in this test')),
      knownKeyFor: () => undefined,
    };
    strategy = new AccessTokenStrategy(keys as unknown as TokenKeyStore, config);
  });

  beforeEach(() => {
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    tokens = new VerifiedTokenCache(10);
    guard = new AccessGuard(
      new Reflector(),
      new SecurityEvents(),
      tokens,
      new RevocationList(),
      strategy,
    );
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('finds the routes and message handlers it walks', () => {
    expect(routes.map((r) => r.route)).toEqual(
      expect.arrayContaining(['POST /orders', 'POST /billing/invoices/:id/pay', 'GET /auth/me']),
    );
    expect(messageHandlers.map((h) => h.name)).toEqual(
      expect.arrayContaining([
        'onOrderCreated',
        'onInvoicePaid',
        'voidInvoice',
        'onSessionsRevoked',
        'onKeysRotated',
      ]),
    );
  });

  it('leaves public only the routes listed as public', async () => {
    const open: string[] = [];
    for (const { route, handler } of routes) {
      const context = httpContext(fakeRequest(), handler.controller, handler.method);
      const admitted = await guard.canActivate(context).catch((error: unknown) => {
        if (error instanceof UnauthorizedException) return false;
        throw error;
      });
      if (admitted) open.push(route);
    }

    expect(open.filter((route) => !PUBLIC_ROUTES.has(route))).toEqual([]);
    expect(open.length).toBeGreaterThan(0);
  });

  it('refuses every message handler data that the transport did not verify', async () => {
    const forged = { actor: { id: '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f', roles: ['admin'] } };
    const admitted: string[] = [];
    for (const handler of messageHandlers) {
      const context = rpcContext(forged, handler.controller, handler.method);
      if (await guard.canActivate(context)) admitted.push(handler.name);
    }

    expect(admitted).toEqual([]);
  });

  /** The routes an actor holding `roles` is admitted to (its token is taken as verified). */
  async function routesAdmitting(roles: string[]): Promise<string[]> {
    const actor = { id: '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f', sessionId: undefined, roles };
    tokens.set('token-of-the-actor', actor, Date.now() / 1000 + 600, tokens.stamp());
    const admitted: string[] = [];
    for (const { route, handler } of routes) {
      const request = fakeRequest({ authorization: 'Bearer token-of-the-actor' });
      const context = httpContext(request, handler.controller, handler.method);
      const allowed = await guard.canActivate(context).catch((error: unknown) => {
        if (error instanceof ForbiddenException) return false;
        throw error;
      });
      if (allowed) admitted.push(route);
    }
    return admitted;
  }

  it('keeps a customer off every route that names only other roles', async () => {
    const admitted = await routesAdmitting(['customer']);

    expect(admitted).toEqual(
      expect.arrayContaining(['POST /orders', 'POST /billing/invoices/:id/pay']),
    );
    expect(admitted.filter((route) => /^\w+ \/auth\/(users|keys)/.test(route))).toEqual([]);
  });

  it('keeps an auditor off every order, invoice and payment route', async () => {
    const admitted = await routesAdmitting(['auditor']);

    expect(admitted.filter((route) => /^\w+ \/(orders|billing)/.test(route))).toEqual([]);
    expect(admitted).toContain('GET /auth/me');
  });

  it('keeps an admin off the routes where only the owner may act', async () => {
    const admitted = await routesAdmitting(['admin']);

    expect(admitted).not.toContain('POST /orders');
    expect(admitted).not.toContain('POST /billing/invoices/:id/pay');
    expect(admitted).toEqual(expect.arrayContaining(['GET /auth/users', 'GET /orders/:id']));
  });
});
