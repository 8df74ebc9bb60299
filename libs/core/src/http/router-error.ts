import type { FastifyReply, FastifyRequest } from 'fastify';

import { errorBody } from './error-body';
import { defaultSecurityHeaders } from './security-headers';

/** Messages for requests Fastify's router refuses before any hook or route runs. */
const ROUTER_ERRORS: Record<string, { status: number; message: string }> = {
  FST_ERR_BAD_URL: { status: 400, message: 'request path is not valid percent-encoded UTF-8' },
  FST_ERR_MAX_PARAM_LENGTH: { status: 414, message: 'a path parameter is too long' },
};

const UNKNOWN = { status: 500, message: 'internal error' };

/**
 * Answers a request the router refuses (a path that is not valid percent-encoding, a path
 * parameter over the router's length limit) with the one error body. Fastify would otherwise
 * answer with its own body, which names its error code and echoes the path; no hook has run
 * yet, so the headers the hooks would add are set here.
 */
export function answerRouterError(
  error: { code?: unknown },
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const { status, message } =
    (typeof error.code === 'string' ? ROUTER_ERRORS[error.code] : undefined) ?? UNKNOWN;
  const correlationId = String(request.id);
  void reply
    .code(status)
    .header('content-type', 'application/json; charset=utf-8')
    .headers(defaultSecurityHeaders())
    .header('x-correlation-id', correlationId)
    .header('cache-control', 'no-store')
    .send(JSON.stringify(errorBody(status, message, correlationId)));
}
