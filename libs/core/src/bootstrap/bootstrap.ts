import { type CanActivate, Logger, Module, type DynamicModule, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { CustomStrategy, NestMicroservice } from '@nestjs/microservices';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance } from 'fastify';
import { LoggerModule, Logger as PinoNestLogger } from 'nestjs-pino';
import type { Server } from 'node:http';

import { ensureDevelopmentSecrets } from '@portcullis/crypto';

import { type AppConfig, loadConfig } from '../config/app-config';
import { SERVICE_NAMES, type ServiceName } from '../config/service-name';
import { MESSAGE_GUARDS, TRANSPORT_SERVER } from '../config/tokens';
import {
  RequestContext,
  type RequestContextState,
  acceptCorrelationId,
} from '../context/request-context';
import { answerClientError } from '../http/client-error';
import { answerRouterError } from '../http/router-error';
import { HttpErrorFilter } from '../http/http-error.filter';
import { parseJsonBody } from '../http/json-body-parser';
import { createValidationPipe } from '../http/validation';
import { installSecurityHeaders } from '../http/security-headers';
import { loggingParams } from '../logging/logger';
import { UNMATCHED_ROUTE, tagRequest } from '../logging/request-telemetry';
import { Metrics } from '../metrics/metrics';
import { formatTraceparent, parseTraceparent, startSpan } from '../tracing/trace-context';
import { CoreModule } from './core.module';

/** Where Swagger UI is served; the OpenAPI document is at `/<path>-json`. */
export const SWAGGER_PATH = 'docs';

/** Largest request body accepted, in bytes; larger bodies get 413. */
export const BODY_LIMIT_BYTES = 100 * 1024;

/**
 * Time a client has to send a whole request, headers and body, in milliseconds; then 408 and
 * the connection closes. Fastify's default (0) turns off Node's limit, so a client sending a
 * body a byte at a time would hold its connection for ever. Node 20 closes such a request at
 * its headers timeout, and looks for late requests every `connectionsCheckingInterval`, so
 * all three are set.
 */
export const REQUEST_TIMEOUT_MS = 30_000;
const LATE_REQUEST_CHECK_MS = 5_000;

const UNSUPPORTED_MEDIA_TYPE = { statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE' };

export interface HostDefinition {
  /** Shown in logs and in the Swagger title, e.g. `platform` or `orders`. */
  readonly name: string;
  /** The services this process hosts; their keys and schemas are loaded. */
  readonly services: readonly ServiceName[];
  /** Called with the validated configuration; returns the modules the host runs. */
  readonly imports: (config: AppConfig) => Array<Type | DynamicModule | Promise<DynamicModule>>;
}

/**
 * Builds a Portcullis application: Fastify, one error body, validation, correlation ids and
 * trace context, pino logs with one line per request, request metrics, security headers,
 * CORS, Swagger, and the message transport that the messaging library provides. It does not
 * listen; {@link runHost} does.
 */
export async function createHost(
  definition: HostDefinition,
  config: AppConfig = loadConfig(),
): Promise<NestFastifyApplication> {
  const createdSecrets =
    config.createMissingSecrets && definition.services.length === SERVICE_NAMES.length
      ? ensureDevelopmentSecrets(config.secretsDir, SERVICE_NAMES)
      : [];

  @Module({
    imports: [
      LoggerModule.forRoot(loggingParams(config, definition.name)),
      CoreModule.forRoot(config, definition.services),
      ...definition.imports(config),
    ],
  })
  class HostModule {}
  Object.defineProperty(HostModule, 'name', { value: `${definition.name}HostModule` });

  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT_BYTES,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    genReqId: (request: { headers: Record<string, unknown> }) =>
      acceptCorrelationId(request.headers['x-correlation-id']),
    // The client IP (`request.ip`) is the socket's address, unless the connection comes from a
    // listed proxy: then it is the last address that proxy's X-Forwarded-For names.
    trustProxy: config.trustedProxies.length > 0 ? [...config.trustedProxies] : false,
    logger: false,
    // A request must arrive whole, headers and body, within REQUEST_TIMEOUT_MS.
    requestTimeout: REQUEST_TIMEOUT_MS,
    http: {
      headersTimeout: REQUEST_TIMEOUT_MS,
      connectionsCheckingInterval: LATE_REQUEST_CHECK_MS,
    },
    // Requests the HTTP parser refuses (an unknown method, oversized headers) get the one
    // error body too, not Fastify's own.
    clientErrorHandler: answerClientError,
    // So do paths the router refuses before any hook runs (bad percent-encoding, an
    // over-long path parameter).
    frameworkErrors: answerRouterError,
  });
  const app = await NestFactory.create<NestFastifyApplication>(HostModule, adapter, {
    bufferLogs: true,
    abortOnError: false,
  });
  app.useLogger(app.get(PinoNestLogger));
  if (createdSecrets.length > 0) {
    // Told through the application's logger, so that it is a JSON line like every other.
    new Logger('Secrets').warn({ msg: 'created development secrets', names: createdSecrets });
  }

  const fastify = app.getHttpAdapter().getInstance();
  installRequestContext(fastify);
  installJsonBodyParser(app);
  installSecurityHeaders(fastify);
  if (config.corsOrigins.length > 0) {
    app.enableCors({
      origin: [...config.corsOrigins],
      methods: ['GET', 'POST', 'PATCH', 'DELETE'],
      allowedHeaders: [
        'authorization',
        'content-type',
        'idempotency-key',
        'x-correlation-id',
        'traceparent',
      ],
      exposedHeaders: ['x-correlation-id', 'traceparent', 'retry-after'],
      credentials: false,
      maxAge: 600,
    });
  }
  app.useGlobalPipes(createValidationPipe());
  app.useGlobalFilters(new HttpErrorFilter());
  app.enableShutdownHooks();

  if (config.swaggerEnabled) setUpSwagger(app, definition);

  const transport = app.get<CustomStrategy['strategy'] | undefined>(TRANSPORT_SERVER, {
    strict: false,
  });
  if (transport) connectMessageTransport(app, transport);
  return app;
}

/**
 * Connects the message transport with the guards every message handler must pass. A
 * connected transport does not inherit the HTTP application's global guards, and reads its
 * own before registering its handlers, so they are added while its start is deferred.
 */
function connectMessageTransport(
  app: NestFastifyApplication,
  transport: CustomStrategy['strategy'],
): void {
  const guards = app.get<CanActivate[] | undefined>(MESSAGE_GUARDS, { strict: false }) ?? [];
  const microservice = app.connectMicroservice<CustomStrategy>(
    { strategy: transport },
    { deferInitialization: true },
  ) as unknown as NestMicroservice;
  microservice.useGlobalGuards(...guards);
  // The application runs the lifecycle hooks once; the transport only registers its handlers.
  microservice.setIsInitHookCalled(true);
}

/** Creates the host, starts its message listeners and serves HTTP on `HOST:PORT`. */
export async function runHost(definition: HostDefinition): Promise<NestFastifyApplication> {
  const config = loadConfig();
  const started = performance.now();
  const app = await createHost(definition, config);
  await app.startAllMicroservices();
  await app.listen(config.port, config.host);
  new Logger('Bootstrap').log({
    msg: 'listening',
    host: definition.name,
    services: definition.services,
    url: await app.getUrl(),
    database: config.databaseUrl ? 'postgresql' : 'embedded',
    bus: config.natsUrl ? 'nats' : 'in-process',
    startupMs: Math.round(performance.now() - started),
  });
  return app;
}

/**
 * Runs every request inside its own context: the correlation id, and the trace context (the
 * caller's valid `traceparent` continued with a span of ours, or a new trace), both echoed in
 * response headers, with `Cache-Control: no-store`. Each finished request is timed into the
 * request duration histogram.
 */
function installRequestContext(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (request, reply, done) => {
    const trace = startSpan(parseTraceparent(request.headers.traceparent));
    const state: RequestContextState = {
      correlationId: String(request.id),
      traceparent: formatTraceparent(trace),
      path: request.url.split('?', 1)[0],
      clientIp: request.ip,
    };
    tagRequest(request.raw, { state, route: request.routeOptions.url ?? UNMATCHED_ROUTE });
    void reply.header('x-correlation-id', request.id);
    void reply.header('traceparent', state.traceparent);
    // Answers carry tokens and personal data: no browser or proxy may keep them (RFC 6749
    // 5.1 asks this of token responses). A route that may be cached says so itself.
    void reply.header('cache-control', 'no-store');
    RequestContext.run(state, done);
  });
  fastify.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? UNMATCHED_ROUTE;
    Metrics.httpRequestDuration.observe(
      { method: request.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    done();
  });
}

/**
 * JSON bodies go through {@link parseJsonBody}: depth-limited, no prototype keys. Form and
 * text bodies, which Fastify and Nest would otherwise parse, are refused with 415: the API
 * speaks JSON only.
 */
function installJsonBodyParser(app: NestFastifyApplication): void {
  app.useBodyParser<Server>(
    ['application/x-www-form-urlencoded', 'text/plain'],
    {},
    (_request, _body, done) => {
      done(
        Object.assign(new Error('only JSON bodies are accepted'), UNSUPPORTED_MEDIA_TYPE),
        undefined,
      );
    },
  );
  app.useBodyParser<Server>(
    'application/json',
    { bodyLimit: BODY_LIMIT_BYTES },
    (_request, body: Buffer, done) => {
      try {
        done(null, parseJsonBody(body.toString('utf8')));
      } catch (error) {
        done(error as Error, undefined);
      }
    },
  );
}

function setUpSwagger(app: NestFastifyApplication, definition: HostDefinition): void {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle(`Portcullis ${definition.name}`)
      .setDescription(
        'Identity, orders and billing, each authenticating and authorizing every request. ' +
          'Log in, then use "Authorize" with the access token.',
      )
      .setVersion('0.1.0')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
      .build(),
  );
  SwaggerModule.setup(SWAGGER_PATH, app, document, {
    jsonDocumentUrl: `${SWAGGER_PATH}-json`,
    swaggerOptions: { persistAuthorization: true },
  });
}

/**
 * The entry point of every app: runs the host, or says why it cannot start (naming the
 * setting or secret, never a value) and exits with status 1.
 */
export function launch(definition: HostDefinition): void {
  runHost(definition).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    process.stderr.write(`${definition.name} failed to start: ${reason}\n`);
    process.exit(1);
  });
}
