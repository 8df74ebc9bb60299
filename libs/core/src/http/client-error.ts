import { randomUUID } from 'node:crypto';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';

import { errorBody } from './error-body';

/** Messages for requests that Node's HTTP parser refuses before Fastify sees a request. */
const PARSER_ERRORS: Record<string, { status: number; message: string }> = {
  HPE_HEADER_OVERFLOW: { status: 431, message: 'request line or headers are too large' },
  ERR_HTTP_REQUEST_TIMEOUT: { status: 408, message: 'request was not received in time' },
  HPE_INVALID_METHOD: { status: 400, message: 'request method is not supported' },
};

const MALFORMED = { status: 400, message: 'request is not valid HTTP/1.1' };

/**
 * Answers a request that Node's HTTP parser could not read (an unknown method, headers over
 * the size limit, a broken request line or chunk, a timeout) with the one error body, then
 * closes the connection: after a parse error the rest of the stream cannot be trusted.
 * Nothing about the parser's own error reaches the client.
 */
export function answerClientError(error: { code?: unknown }, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return;
  const { status, message } =
    (typeof error.code === 'string' ? PARSER_ERRORS[error.code] : undefined) ?? MALFORMED;
  const correlationId = randomUUID();
  const body = JSON.stringify(errorBody(status, message, correlationId));
  if (socket.writable) {
    socket.write(
      [
        `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}`,
        'content-type: application/json; charset=utf-8',
        `content-length: ${Buffer.byteLength(body)}`,
        `x-correlation-id: ${correlationId}`,
        'x-content-type-options: nosniff',
        'cache-control: no-store',
        'connection: close',
        '',
        body,
      ].join('\r\n'),
    );
  }
  socket.destroy();
}
