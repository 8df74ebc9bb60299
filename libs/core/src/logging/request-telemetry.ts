import type { IncomingMessage } from 'node:http';

import type { RequestContextState } from '../context/request-context';

/** The route label of a request that matched no route, so unknown paths add no labels. */
export const UNMATCHED_ROUTE = 'unmatched';

const TELEMETRY = Symbol('portcullis.requestTelemetry');

/** What the request log line and metrics need to know about a request beyond its socket. */
export interface RequestTelemetry {
  /** The request's context: correlation id, trace context and, once verified, the actor. */
  readonly state: RequestContextState;
  /** The matched route's pattern (`/orders/:id`), never the raw URL. */
  readonly route: string;
}

type TaggedRequest = IncomingMessage & { [TELEMETRY]?: RequestTelemetry };

/** Attaches a request's telemetry to the Node request, where the request logger finds it. */
export function tagRequest(request: IncomingMessage, telemetry: RequestTelemetry): void {
  (request as TaggedRequest)[TELEMETRY] = telemetry;
}

/** The telemetry {@link tagRequest} attached, if the request got that far. */
export function telemetryOf(request: IncomingMessage): RequestTelemetry | undefined {
  return (request as TaggedRequest)[TELEMETRY];
}
