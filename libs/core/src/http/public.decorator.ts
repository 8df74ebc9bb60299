import { SetMetadata } from '@nestjs/common';

export const IS_PUBLIC = 'portcullis:public';

/**
 * Marks a route or message handler as reachable without a verified user. Every other
 * handler is denied by the global guard unless a verified token (or, for messages, a
 * verified envelope) allows it.
 */
export const Public = (): MethodDecorator & ClassDecorator => SetMetadata(IS_PUBLIC, true);
