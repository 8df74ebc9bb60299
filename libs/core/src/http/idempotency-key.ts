import { BadRequestException, ExecutionContext, createParamDecorator } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * The `Idempotency-Key` header, validated: 1-255 visible ASCII characters (no spaces).
 * `required` makes its absence a 400.
 */
export const IdempotencyKey = createParamDecorator(
  (required: boolean | undefined, context: ExecutionContext): string | undefined => {
    const value = context.switchToHttp().getRequest<FastifyRequest>().headers['idempotency-key'];
    if (value === undefined) {
      if (required) throw new BadRequestException(['Idempotency-Key header is required']);
      return undefined;
    }
    if (typeof value !== 'string' || !IDEMPOTENCY_KEY.test(value)) {
      throw new BadRequestException(['Idempotency-Key must be 1-255 visible ASCII characters']);
    }
    return value;
  },
);
