import { type ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/**
 * The client's IP address as Fastify resolved it: the socket address, unless the request came
 * through a proxy the configuration trusts. A forged `X-Forwarded-For` changes nothing.
 */
export const ClientIp = createParamDecorator(
  (_: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<FastifyRequest>().ip,
);
