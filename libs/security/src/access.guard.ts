import {
  CanActivate,
  ExecutionContext,
  ForbiddenException,
  Inject,
  Injectable,
  UnauthorizedException,
} from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { FastifyRequest } from 'fastify';

import { SecurityEvents } from '@portcullis/audit';
import { type Actor, IS_PUBLIC, RequestContext } from '@portcullis/core';
import { VerifiedMessage } from '@portcullis/messaging';

import {
  ACCESS_TOKEN_EXPIRY,
  AccessTokenStrategy,
  type VerifiedTokenRequest,
  extractAccessToken,
} from './access-token.strategy';
import { TokenRejectedError } from './access-token.verifier';
import { REQUIRED_ROLES } from './decorators';
import { RevocationList } from './revocation-list';
import { VerifiedTokenCache } from './verified-token-cache';

type GuardedRequest = FastifyRequest & VerifiedTokenRequest & { user?: Actor };

/** What a handler's decorators say about who may call it. */
interface HandlerPolicy {
  readonly isPublic: boolean;
  readonly roles?: string[];
}

/** One run of the strategy, with the callbacks passport would attach to it. */
interface StrategyAttempt {
  success(user: Actor): void;
  fail(challenge?: unknown, status?: number): void;
  error(error: unknown): void;
  pass(): void;
  redirect(): void;
  authenticate(request: object, options?: object): void;
}

function reasonOf(cause: unknown): string {
  return cause instanceof TokenRejectedError ? cause.reason : 'rejected';
}

/**
 * The global guard of every app. HTTP: deny unless the route is `@Public()` or carries a
 * verified access token (and one of the `@Roles()` it names). Messages: deny unless the
 * transport verified the envelope, and the envelope's actor holds the `@Roles()` named.
 *
 * A token verified before is answered from the {@link VerifiedTokenCache} without running
 * passport at all; any other token goes through the passport-jwt strategy in full, and is
 * remembered once it passes. The guard runs the strategy as passport's `authenticate` would,
 * with the same callbacks, but without the middleware around it, which cost more than the
 * signature check itself.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  /** Each handler's policy by class, read from the decorators once, not on every request. */
  private readonly policies = new WeakMap<object, WeakMap<object, HandlerPolicy>>();

  constructor(
    private readonly reflector: Reflector,
    @Inject(SecurityEvents) private readonly events: SecurityEvents,
    @Inject(VerifiedTokenCache) private readonly tokens: VerifiedTokenCache,
    @Inject(RevocationList) private readonly revocations: RevocationList,
    @Inject(AccessTokenStrategy) private readonly strategy: AccessTokenStrategy,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const { isPublic, roles } = this.policyOf(context);

    switch (context.getType()) {
      case 'http':
        return isPublic || this.admitRequest(context, roles);
      case 'rpc':
        return this.admitMessage(context, roles);
      case 'ws':
        return false;
    }
  }

  private policyOf(context: ExecutionContext): HandlerPolicy {
    const [handler, controller] = [context.getHandler(), context.getClass()];
    let byHandler = this.policies.get(controller);
    const known = byHandler?.get(handler);
    if (known) return known;
    const targets = [handler, controller];
    const policy = {
      isPublic: this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets) === true,
      roles: this.reflector.getAllAndOverride<string[] | undefined>(REQUIRED_ROLES, targets),
    };
    if (!byHandler) this.policies.set(controller, (byHandler = new WeakMap()));
    byHandler.set(handler, policy);
    return policy;
  }

  private async admitRequest(context: ExecutionContext, roles?: string[]): Promise<boolean> {
    const request = context.switchToHttp().getRequest<GuardedRequest>();
    const actor = await this.authenticate(request);
    if (this.revocations.isRevoked(actor.sessionId)) {
      this.events.record({
        type: 'auth.token_rejected',
        outcome: 'denied',
        reason: 'session_revoked',
        actorId: actor.id,
        details: { sessionId: actor.sessionId },
      });
      throw new UnauthorizedException('a valid bearer access token is required');
    }
    RequestContext.setActor(actor);
    if (roles && !roles.some((role) => actor.roles.includes(role))) {
      this.events.record({
        type: 'access.denied',
        outcome: 'denied',
        reason: 'missing_role',
        details: { route: `${request.method} ${request.routeOptions?.url ?? ''}` },
      });
      throw new ForbiddenException('this action needs another role');
    }
    return true;
  }

  /** The actor of the request's token: from the cache, or verified in full and then cached. */
  private async authenticate(request: GuardedRequest): Promise<Actor> {
    const token = extractAccessToken(request);
    const key = token ? VerifiedTokenCache.keyOf(token) : undefined;
    if (key !== undefined) {
      const cached = this.tokens.getByKey(key);
      if (cached) {
        request.user = cached;
        return cached;
      }
    }

    const stamp = this.tokens.stamp();
    const actor = await this.runStrategy(request);
    request.user = actor;
    const expiresAt = request[ACCESS_TOKEN_EXPIRY];
    if (key !== undefined && expiresAt !== undefined) {
      this.tokens.setByKey(key, actor, expiresAt, stamp);
    }
    return actor;
  }

  /** Runs the passport-jwt strategy once; every failure becomes one 401 without library text. */
  private runStrategy(request: GuardedRequest): Promise<Actor> {
    return new Promise<Actor>((resolve, reject) => {
      const refuse = (cause: unknown): void => {
        this.events.record({
          type: 'auth.token_rejected',
          outcome: 'denied',
          reason: reasonOf(cause),
        });
        reject(new UnauthorizedException('a valid bearer access token is required'));
      };
      const attempt = Object.create(this.strategy) as StrategyAttempt;
      attempt.success = resolve;
      attempt.fail = refuse;
      attempt.error = refuse;
      attempt.pass = () => refuse(undefined);
      attempt.redirect = () => refuse(undefined);
      attempt.authenticate(request, { session: false });
    });
  }

  private admitMessage(context: ExecutionContext, roles?: string[]): boolean {
    const message = context.switchToRpc().getData<unknown>();
    if (!(message instanceof VerifiedMessage)) {
      this.events.record({
        type: 'message.refused',
        outcome: 'denied',
        reason: 'not_verified',
        details: { handler: context.getHandler().name },
      });
      return false;
    }
    if (!roles) return true;
    const held = message.actor?.roles ?? [];
    if (roles.some((role) => held.includes(role))) return true;
    this.events.record({
      type: 'access.denied',
      outcome: 'denied',
      reason: 'missing_role',
      actorId: message.actor?.id,
      details: { messageType: message.type, sender: message.sender },
    });
    return false;
  }
}
