import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type DestinationStream, type Logger, type LoggerOptions, pino } from 'pino';

import type { AppConfig } from '../config/app-config';
import { RequestContext } from '../context/request-context';
import { logSerializers, redactLogObject } from './log-redaction';
import { UNMATCHED_ROUTE, telemetryOf } from './request-telemetry';

const PINO_LEVELS = { error: 'error', warn: 'warn', log: 'info', debug: 'debug' } as const;

/** Fields every line logged inside a request or a handled message carries. */
function contextFields(): Record<string, string> {
  const state = RequestContext.current();
  if (!state) return {};
  const fields: Record<string, string> = { correlationId: state.correlationId };
  if (state.traceparent) fields.traceparent = state.traceparent;
  if (state.actor) fields.userId = state.actor.id;
  return fields;
}

/**
 * pino settings of every Portcullis process: JSON lines with an ISO time, the service, the
 * context of the current request or message, secrets redacted anywhere in the logged object
 * and bodies dropped.
 */
export function loggerOptions(config: AppConfig, service: string): LoggerOptions {
  return {
    level: PINO_LEVELS[config.logLevel],
    base: { service },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }), log: redactLogObject },
    mixin: contextFields,
    serializers: { ...logSerializers, err: pino.stdSerializers.err },
  };
}

/** The process's root pino logger, writing to `destination` (stdout by default). */
export function createRootLogger(
  config: AppConfig,
  service: string,
  destination: DestinationStream = config.logFormat === 'pretty'
    ? prettyDestination()
    : pino.destination({ dest: 1, sync: true }),
): Logger {
  return pino(loggerOptions(config, service), destination);
}

/** The one line logged per HTTP request. */
function requestLine(request: IncomingMessage, response: ServerResponse, durationMs: unknown) {
  const telemetry = telemetryOf(request);
  const state = telemetry?.state;
  return {
    method: request.method,
    route: telemetry?.route ?? UNMATCHED_ROUTE,
    status: response.statusCode,
    durationMs,
    correlationId: state?.correlationId,
    traceparent: state?.traceparent,
    userId: state?.actor?.id,
  };
}

/**
 * nestjs-pino settings: Nest's logger replaced by pino, and one line per HTTP request (on
 * every route: on Fastify the module's default pattern would match only `/`). Request
 * lines come from the request's own context, not from its URL, headers or body.
 */
export function loggingParams(config: AppConfig, service: string, logger?: Logger): Params {
  return {
    forRoutes: [{ path: '{*path}', method: RequestMethod.ALL }],
    pinoHttp: {
      logger: logger ?? createRootLogger(config, service),
      quietResLogger: true,
      // pino-http puts the request on every line logged during it: its method, no more.
      serializers: { req: logSerializers.req, res: logSerializers.res },
      customAttributeKeys: { responseTime: 'durationMs' },
      customLogLevel: (_request, response, error) =>
        error || response.statusCode >= 500 ? 'error' : 'info',
      customSuccessMessage: () => 'request',
      customErrorMessage: () => 'request failed',
      customSuccessObject: (request, response, value: { durationMs: unknown }) =>
        requestLine(request, response, value.durationMs),
      customErrorObject: (request, response, _error, value: { durationMs: unknown }) =>
        requestLine(request, response, value.durationMs),
    },
  };
}

/** Development output (`LOG_FORMAT=pretty`): one readable line per entry. */
function prettyDestination(): DestinationStream {
  return {
    write(line: string): void {
      const entry = JSON.parse(line) as Record<string, unknown>;
      const text = (key: string): string => {
        const value = entry[key];
        delete entry[key];
        return typeof value === 'string' ? value : '';
      };
      const head = `${text('time')} ${text('level').toUpperCase().padEnd(5)} [${text('context')}]`;
      const message = text('msg');
      delete entry.service;
      const extra = Object.keys(entry).length > 0 ? ` ${JSON.stringify(entry)}` : '';
      process.stdout.write(`${head} ${message}${extra}\n`);
    },
  };
}
