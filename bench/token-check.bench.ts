import { generateKeyPairSync, randomUUID, verify } from 'node:crypto';

import { Logger } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import jwt from 'jsonwebtoken';
import passport from 'passport';
import { ExtractJwt, Strategy as JwtStrategy } from 'passport-jwt';

import { SecurityEvents } from '@portcullis/audit';
import { type AppConfig, RequestContext, ScrapeToken, loadConfig } from '@portcullis/core';
import { EnvironmentSecrets } from '@portcullis/crypto';
import {
  AccessGuard,
  AccessTokenStrategy,
  AccessTokenVerifier,
  RevocationList,
  Roles,
  type TokenKeyStore,
  VerifiedTokenCache,
} from '@portcullis/security';

import { median, microsecondsPerCheck, pairedMicroseconds, table } from './measure';

/** One row of the token-check benchmark: microseconds per check, and its ratio to the floor. */
export interface TokenCheckFigure {
  readonly variant: string;
  readonly microseconds: number;
  /** For checks measured in alternation with the floor: the median per-pair ratio and range. */
  readonly paired?: { readonly ratio: number; readonly lowest: number; readonly highest: number };
}

const ITERATIONS = Number(process.env.BENCH_TOKEN_ITERATIONS ?? 4000);
const RUNS = Number(process.env.BENCH_RUNS ?? 5);
const PAIRS = Number(process.env.BENCH_PAIRS ?? 11);
const MISSES = Number(process.env.BENCH_TOKEN_MISSES ?? 1000);

class BenchController {
  @Roles('customer')
  guarded(): void {}
}

const guardedHandler = Object.getOwnPropertyDescriptor(BenchController.prototype, 'guarded')
  ?.value as () => void;

/** An HTTP execution context of a route that needs a customer, as Nest builds one per request. */
function contextFor(request: object) {
  const handler = guardedHandler;
  return {
    getType: () => 'http',
    getClass: () => BenchController,
    getHandler: () => handler,
    getArgs: () => [request, {}],
    getArgByIndex: (index: number) => [request, {}][index],
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => ({}), getNext: () => 0 }),
  };
}

/**
 * Token checks side by side, one process, one RSA-2048 key: a verified-token cache hit; a miss
 * (the guard running the passport-jwt strategy in full, then the cache store), and the token
 * verification that the strategy runs on a miss; the bare `crypto.verify` of the
 * same signature as the floor; and passport-jwt set up the common way (PEM string key, no
 * cache) as the anchor.
 */
export async function runTokenCheckBenchmark(): Promise<TokenCheckFigure[]> {
  Logger.overrideLogger(['error']);
  const config: AppConfig = loadConfig({});
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const issue = (): string =>
    jwt.sign({ sid: randomUUID(), roles: ['customer'] }, privateKey, {
      algorithm: 'RS256',
      keyid: 'bench-key',
      issuer: config.tokenIssuer,
      audience: config.tokenAudience,
      subject: randomUUID(),
      expiresIn: config.accessTokenTtlSeconds,
    });
  const token = issue();
  const authorization = `Bearer ${token}`;
  // Every miss sees a token the cache has never seen: one per call of every run.
  const fresh = Array.from({ length: MISSES * (RUNS + 1) }, () => `Bearer ${issue()}`);

  const keys = {
    keyForToken: () => Promise.resolve(publicKey),
    knownKeyFor: () => publicKey,
  } as unknown as TokenKeyStore;
  const strategy = new AccessTokenStrategy(keys, config);
  const cache = new VerifiedTokenCache(fresh.length + 1);
  const events = new SecurityEvents();
  const scrapeToken = new ScrapeToken(new EnvironmentSecrets({}));
  const revocations = new RevocationList();
  const guard = new AccessGuard(new Reflector(), events, cache, revocations, strategy, scrapeToken);
  const check = (header = authorization): Promise<boolean> =>
    RequestContext.run({ correlationId: 'bench' }, () =>
      guard.canActivate(contextFor({ headers: { authorization: header } }) as never),
    );

  const [signingInput, signature] = [
    token.slice(0, token.lastIndexOf('.')),
    Buffer.from(token.slice(token.lastIndexOf('.') + 1), 'base64url'),
  ];
  const floor = () => {
    if (!verify('RSA-SHA256', Buffer.from(signingInput), publicKey, signature)) {
      throw new Error('the floor failed to verify');
    }
  };

  const verifyOptions: jwt.VerifyOptions = {
    algorithms: ['RS256'],
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
    maxAge: `${config.accessTokenTtlSeconds + 60}s`,
    clockTolerance: 5,
  };
  const library = () => jwt.verify(token, publicKey, verifyOptions);
  const verifier = new AccessTokenVerifier({
    issuer: config.tokenIssuer,
    audience: config.tokenAudience,
    maxLifetimeSeconds: config.accessTokenTtlSeconds + 60,
    clockToleranceSeconds: 5,
  });
  const lean = () => verifier.verify(token, publicKey);

  const pem = publicKey.export({ type: 'spki', format: 'pem' }) as string;
  passport.use(
    'bench-common',
    new JwtStrategy(
      {
        jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(),
        secretOrKey: pem,
        algorithms: ['RS256'],
        issuer: config.tokenIssuer,
        audience: config.tokenAudience,
      },
      (payload: object, done: (error: null, user: object) => void) => done(null, payload),
    ),
  );
  const common = () =>
    new Promise<void>((resolve, reject) => {
      passport.authenticate('bench-common', { session: false }, (error: unknown, user: unknown) =>
        error || !user ? reject(new Error('the common set-up refused the token')) : resolve(),
      )({ headers: { authorization } }, {}, reject);
    });

  let next = 0;
  const miss = async () => {
    if (!(await check(fresh[next++]))) throw new Error('the guard refused the token');
  };
  const hit = () => {
    if (!cache.get(token)) throw new Error('the cache missed');
  };

  await check();
  const figures: TokenCheckFigure[] = [];
  const measure = async (variant: string, fn: () => unknown, iterations = ITERATIONS) => {
    figures.push({ variant, microseconds: await microsecondsPerCheck(fn, iterations, RUNS) });
  };
  await measure('cache hit (VerifiedTokenCache.get)', hit, ITERATIONS * 50);
  await measure('guard, cache hit (AccessGuard.canActivate)', check, ITERATIONS * 20);
  await measure('miss: guard, passport-jwt strategy in full, then cached', miss, MISSES);
  // The verifications are set against the floor run by run, in alternation: the ratio is
  // what the targets are about, and on a shared machine two medians taken apart drift.
  const compared = async (variant: string, fn: () => unknown) => {
    const pair = await pairedMicroseconds(fn, floor, ITERATIONS, PAIRS);
    figures.push({ variant, microseconds: pair.first, paired: pair });
    return pair.second;
  };
  const floors = [
    await compared('miss: token verification (AccessTokenVerifier, as the strategy runs it)', lean),
    await compared('for comparison: jsonwebtoken.verify, KeyObject', library),
  ];
  figures.push({ variant: 'floor: bare crypto.verify, same key', microseconds: median(floors) });
  await measure('anchor: passport-jwt, PEM string key, no cache', common, ITERATIONS / 4);
  return figures;
}

/** The figures as a table, with each one's ratio to the floor. */
export function tokenCheckTable(figures: readonly TokenCheckFigure[]): string {
  const floor = figures.find((f) => f.variant.startsWith('floor'))?.microseconds ?? NaN;
  const ratio = (f: TokenCheckFigure): string =>
    f.paired
      ? `${f.paired.ratio.toFixed(2)}x (${f.paired.lowest.toFixed(2)}-${f.paired.highest.toFixed(2)}, paired)`
      : `${(f.microseconds / floor).toFixed(2)}x`;
  return table(
    ['token check', 'µs CPU per check (median)', 'vs. floor'],
    figures.map((f) => [
      f.variant,
      f.microseconds < 10 ? f.microseconds.toFixed(2) : f.microseconds.toFixed(1),
      ratio(f),
    ]),
  );
}
