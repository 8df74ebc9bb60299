import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';

/** The authenticated user on whose behalf a request or a message is processed. */
export interface Actor {
  readonly id: string;
  readonly roles: readonly string[];
  readonly sessionId?: string;
}

/** What travels with one unit of work: an HTTP request or a handled message. */
export interface RequestContextState {
  correlationId: string;
  /** W3C trace context of this unit of work (`00-<trace id>-<span id>-<flags>`), when known. */
  traceparent?: string;
  actor?: Actor;
  /** Path of the HTTP request, without its query; absent for messages. */
  path?: string;
  /** Address of the HTTP client, as the trusted-proxy setting resolves it. */
  clientIp?: string;
  /** The hosted service doing the work, once known (e.g. the service whose inbox applies it). */
  service?: string;
  /**
   * Set when the event stream delivers a message again (after a failure or a lost
   * acknowledgement): an earlier delivery may have applied it already.
   */
  redelivery?: boolean;
}

const storage = new AsyncLocalStorage<RequestContextState>();

const CORRELATION_ID_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Ambient context of the current request or message, carried across `await`s. */
export const RequestContext = {
  run<T>(state: RequestContextState, work: () => T): T {
    return storage.run(state, work);
  },

  current(): RequestContextState | undefined {
    return storage.getStore();
  },

  /** Runs `work` in no request's context: work done for several requests at once. */
  outside<T>(work: () => T): T {
    return storage.exit(work);
  },

  correlationId(): string | undefined {
    return storage.getStore()?.correlationId;
  },

  actor(): Actor | undefined {
    return storage.getStore()?.actor;
  },

  /** Adopts a verified message's correlation id and actor; only the messaging layer calls this. */
  adoptMessage(correlationId: string, actor: Actor | undefined, traceparent?: string): void {
    const state = storage.getStore();
    if (!state) return;
    state.correlationId = correlationId;
    state.traceparent = traceparent;
    state.actor = actor;
  },

  traceparent(): string | undefined {
    return storage.getStore()?.traceparent;
  },

  /** Records the verified actor; only the authentication guard calls this. */
  setActor(actor: Actor): void {
    const state = storage.getStore();
    if (state) state.actor = actor;
  },
};

/** Accepts a caller's correlation id when it is short and plain; otherwise makes a new one. */
export function acceptCorrelationId(candidate: unknown): string {
  return typeof candidate === 'string' && CORRELATION_ID_PATTERN.test(candidate)
    ? candidate
    : randomUUID();
}
