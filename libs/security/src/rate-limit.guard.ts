import { type ExecutionContext, Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost, Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  ThrottlerException,
  ThrottlerGuard,
  type ThrottlerLimitDetail,
  type ThrottlerModuleOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { SecurityEvents } from '@portcullis/audit';
import { type Actor, RequestContext, SWAGGER_PATH, errorBody } from '@portcullis/core';

/** The two budgets every request draws on: its client IP's and, once known, its user's. */
export const RATE_LIMIT_BY_IP = 'ip';
export const RATE_LIMIT_BY_USER = 'user';

const TOO_MANY_REQUESTS = 'too many requests; try again later';

/** Metadata keys that `@SkipThrottle()` and `@Throttle()` write, followed by the budget name. */
const SKIP_KEY = 'THROTTLER:SKIP';
const LIMIT_KEY = 'THROTTLER:LIMIT';
const TTL_KEY = 'THROTTLER:TTL';

/** A route's share of one budget, read once per handler from its decorators. */
interface RouteBudget {
  readonly skip: boolean;
  readonly limit: number;
  readonly ttl: number;
}

/**
 * A throttler guard that enforces one named budget over all HTTP routes of a process. The
 * budget is keyed by `name:tracker` only (not by route); a refusal is a 429 carrying
 * `Retry-After` and is recorded once per window as a security event. Messages are not
 * counted here: they come from services, not clients.
 *
 * Per request it counts one hit and nothing more: what `@SkipThrottle()` and `@Throttle()`
 * say about a route's share of the budget is read once per handler, not on every request.
 */
abstract class RateLimitGuard extends ThrottlerGuard {
  protected abstract readonly budget: string;
  private readonly routes = new WeakMap<object, WeakMap<object, RouteBudget>>();

  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    @Inject(SecurityEvents) private readonly events: SecurityEvents,
  ) {
    super(options, storage, reflector);
  }

  /** Keeps only this guard's own budget, so each request walks one throttler per guard. */
  override async onModuleInit(): Promise<void> {
    await super.onModuleInit();
    this.throttlers = this.throttlers.filter((throttler) => throttler.name === this.budget);
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    return Promise.resolve(context.getType() !== 'http');
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    if (await this.shouldSkip(context)) return true;
    const route = this.routeBudget(context);
    if (route.skip) return true;
    const tracker = await this.getTracker(context.switchToHttp().getRequest());
    const key = this.generateKey(context, tracker, this.budget);
    const record = await this.storageService.increment(
      key,
      route.ttl,
      route.limit,
      route.ttl,
      this.budget,
    );
    if (record.isBlocked) {
      await this.throwThrottlingException(context, {
        ...record,
        limit: route.limit,
        ttl: route.ttl,
        key,
        tracker,
      });
    }
    return true;
  }

  private routeBudget(context: ExecutionContext): RouteBudget {
    const [handler, controller] = [context.getHandler(), context.getClass()];
    let byHandler = this.routes.get(controller);
    const known = byHandler?.get(handler);
    if (known) return known;
    const targets = [handler, controller];
    const read = (key: string): unknown =>
      this.reflector.getAllAndOverride<unknown>(key + this.budget, targets);
    const defaults = this.throttlers[0];
    const limit = read(LIMIT_KEY) ?? defaults.limit;
    const ttl = read(TTL_KEY) ?? defaults.ttl;
    if (typeof limit !== 'number' || typeof ttl !== 'number') {
      throw new Error(`the ${this.budget} rate limit needs a numeric limit and ttl`);
    }
    const route = { skip: read(SKIP_KEY) === true, limit, ttl };
    if (!byHandler) this.routes.set(controller, (byHandler = new WeakMap()));
    byHandler.set(handler, route);
    return route;
  }

  protected override generateKey(
    _context: ExecutionContext,
    tracker: string,
    name: string,
  ): string {
    return `${name}:${tracker}`;
  }

  protected override throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const http = context.switchToHttp();
    void http.getResponse<FastifyReply>().header('retry-after', String(detail.timeToBlockExpire));
    const request = http.getRequest<FastifyRequest & { user?: Actor }>();
    recordFirstRefusal(this.events, this.budget, detail, request.ip, request.user?.id);
    throw new ThrottlerException(TOO_MANY_REQUESTS);
  }
}

/**
 * Records a budget's refusal as a security event once per window: for the first request over
 * the limit, not for each one after it.
 */
function recordFirstRefusal(
  events: SecurityEvents,
  budget: string,
  detail: { totalHits: number; limit: number; ttl: number },
  clientIp: string,
  actorId?: string,
): void {
  if (detail.totalHits !== detail.limit + 1) return;
  events.record({
    type: 'rate_limit.exceeded',
    outcome: 'denied',
    reason: budget,
    clientIp,
    actorId,
    details: { limit: detail.limit, windowMs: detail.ttl },
  });
}

/** Counts every request, public or not, against its client IP, before authentication. */
@Injectable()
export class ClientRateLimitGuard extends RateLimitGuard {
  protected readonly budget = RATE_LIMIT_BY_IP;
}

/** Counts authenticated requests against their user, after authentication. */
@Injectable()
export class ActorRateLimitGuard extends RateLimitGuard {
  protected readonly budget = RATE_LIMIT_BY_USER;

  protected override getTracker(request: Record<string, unknown>): Promise<string> {
    return Promise.resolve((request.user as Actor | undefined)?.id ?? '');
  }

  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    if (context.getType() !== 'http') return Promise.resolve(true);
    const user = context.switchToHttp().getRequest<{ user?: Actor }>().user;
    return Promise.resolve(user === undefined);
  }
}

/**
 * The per-IP budget for requests that never reach a Nest route, and so never pass its guards:
 * Swagger UI with its OpenAPI document, and paths that no route matches (404). They draw on
 * the same budget under the same key as {@link ClientRateLimitGuard}, so that a client cannot
 * go around the limit there, e.g. by pipelining thousands of requests for the OpenAPI document.
 */
@Injectable()
export class UnroutedRateLimit implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    @InjectThrottlerOptions() private readonly options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() private readonly storage: ThrottlerStorage,
    @Inject(SecurityEvents) private readonly events: SecurityEvents,
  ) {}

  /** Runs after the routes are registered and before the server listens. */
  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter?.getInstance<FastifyInstance>();
    const throttlers = Array.isArray(this.options) ? this.options : this.options.throttlers;
    const budget = throttlers.find((throttler) => throttler.name === RATE_LIMIT_BY_IP);
    if (typeof fastify?.addHook !== 'function' || budget === undefined) return;
    const { limit, ttl } = budget;
    if (typeof limit !== 'number' || typeof ttl !== 'number') {
      throw new Error('the ip rate limit needs a numeric limit and ttl');
    }
    fastify.addHook('onRequest', async (request, reply) => {
      if (!isUnrouted(request)) return;
      const key = `${RATE_LIMIT_BY_IP}:${request.ip}`;
      const record = await this.storage.increment(key, ttl, limit, ttl, RATE_LIMIT_BY_IP);
      if (!record.isBlocked) return;
      recordFirstRefusal(this.events, RATE_LIMIT_BY_IP, { ...record, limit, ttl }, request.ip);
      const correlationId = RequestContext.correlationId() ?? String(request.id);
      await reply
        .code(429)
        .header('retry-after', String(Math.max(1, record.timeToBlockExpire)))
        .header('content-type', 'application/json; charset=utf-8')
        .send(errorBody(429, TOO_MANY_REQUESTS, correlationId));
    });
  }
}

/** A request for Swagger UI or the OpenAPI document, or for a path that no route serves. */
function isUnrouted(request: FastifyRequest): boolean {
  const route = request.routeOptions.url;
  return route === undefined || route.startsWith(`/${SWAGGER_PATH}`);
}

/** Throttler options from the validated configuration. */
export function rateLimitOptions(
  windowMs: number,
  perIp: number,
  perUser: number,
  storage: Pick<ThrottlerStorage, 'increment'>,
): ThrottlerModuleOptions {
  return {
    throttlers: [
      { name: RATE_LIMIT_BY_IP, ttl: windowMs, limit: perIp },
      { name: RATE_LIMIT_BY_USER, ttl: windowMs, limit: perUser },
    ],
    storage,
    setHeaders: false,
    errorMessage: TOO_MANY_REQUESTS,
  };
}
