import { ArgumentsHost, Catch, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { RequestContext } from '../context/request-context';
import { errorBody } from './error-body';
import { RetryLaterException } from './retry-later.exception';
import { JSON_BODY_ERRORS } from './json-body-parser';

/** Messages a client may see for errors that Fastify raises before a route runs. */
const FRAMEWORK_ERRORS: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'request body is too large',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'content type is not supported; send application/json',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'content length does not match the body',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'request body is empty',
  FST_ERR_CTP_INVALID_JSON_BODY: 'request body is not valid JSON',
  FST_ERR_CTP_INVALID_TYPE: 'content type is not supported; send application/json',
  ...JSON_BODY_ERRORS,
};

interface FrameworkError {
  code?: unknown;
  statusCode?: unknown;
}

/**
 * Turns every failure into the one error body. Only messages we wrote reach the client:
 * library messages, stack traces and internals stay in the log.
 */
@Catch()
export class HttpErrorFilter implements ExceptionFilter {
  private readonly logger = new Logger('HttpError');

  catch(exception: unknown, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw exception;
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    sendError(exception, request, reply, this.logger);
  }
}

/** Writes the one error body for any thrown value. */
export function sendError(
  exception: unknown,
  request: FastifyRequest,
  reply: FastifyReply,
  logger: Logger,
): void {
  const correlationId = RequestContext.correlationId() ?? String(request.id);
  const { status, message } = describe(exception);
  if (status >= 500) {
    logger.error({
      msg: 'request failed',
      correlationId,
      method: request.method,
      url: request.routeOptions?.url ?? 'unmatched',
      error: exception instanceof Error ? exception.stack : String(exception),
    });
  }
  if (reply.sent) return;
  if (exception instanceof RetryLaterException) {
    void reply.header('retry-after', String(Math.max(1, Math.ceil(exception.retryAfterSeconds))));
  }
  void reply
    .header('x-correlation-id', correlationId)
    .header('content-type', 'application/json; charset=utf-8')
    .status(status)
    .send(errorBody(status, message, correlationId));
}

function describe(exception: unknown): { status: number; message: string | string[] } {
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const framework = frameworkMessage(exception.cause, status);
    if (framework) return { status, message: framework };
    const response = exception.getResponse();
    if (typeof response === 'string') return { status, message: response };
    const message = (response as { message?: unknown }).message;
    if (typeof message === 'string') {
      return { status, message: UNMATCHED_ROUTE.test(message) ? 'no such route' : message };
    }
    if (Array.isArray(message) && message.every((m) => typeof m === 'string')) {
      return { status, message };
    }
    return { status, message: exception.message };
  }

  const status = statusOf(exception);
  const framework = status ? frameworkMessage(exception, status) : undefined;
  if (status && framework) return { status, message: framework };
  return { status: HttpStatus.INTERNAL_SERVER_ERROR, message: 'internal error' };
}

/** Nest's router answers an unknown path with "Cannot GET /path"; the path is not echoed. */
const UNMATCHED_ROUTE = /^Cannot [A-Z]+ /;

/** Our own wording for an error Fastify raised while reading the request. */
function frameworkMessage(cause: unknown, status: number): string | undefined {
  const code = (cause as FrameworkError | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  return FRAMEWORK_ERRORS[code] ?? (status < 500 ? 'request is not acceptable' : undefined);
}

function statusOf(error: unknown): number | undefined {
  const status = (error as FrameworkError | null)?.statusCode;
  return typeof status === 'number' && status >= 400 && status < 500 ? status : undefined;
}
