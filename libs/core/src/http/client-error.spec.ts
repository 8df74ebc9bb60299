import { describe, expect, it } from '@jest/globals';
import type { Duplex } from 'node:stream';

import { answerClientError } from './client-error';

/** A socket that keeps what is written to it. */
function fakeSocket(state: { destroyed?: boolean } = {}) {
  const socket = {
    written: '',
    destroyed: state.destroyed ?? false,
    get writable() {
      return !this.destroyed;
    },
    write(chunk: string) {
      this.written += chunk;
      return true;
    },
    destroy() {
      this.destroyed = true;
    },
  };
  return socket;
}

function answer(code?: string) {
  const socket = fakeSocket();
  answerClientError({ code }, socket as unknown as Duplex);
  const [head, body] = socket.written.split('\r\n\r\n');
  return {
    head: head.split('\r\n'),
    body: JSON.parse(body) as Record<string, unknown>,
    destroyed: socket.destroyed,
  };
}

describe('answerClientError', () => {
  it('answers headers over the limit with 431 in the one error body, and closes', () => {
    const { head, body, destroyed } = answer('HPE_HEADER_OVERFLOW');
    expect(head[0]).toBe('HTTP/1.1 431 Request Header Fields Too Large');
    expect(body).toEqual({
      statusCode: 431,
      error: 'Request Header Fields Too Large',
      message: 'request line or headers are too large',
      correlationId: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
    expect(head).toContain(`x-correlation-id: ${String(body.correlationId)}`);
    expect(head).toContain('connection: close');
    expect(destroyed).toBe(true);
  });

  it('answers an unknown method and any other parse error with 400, naming no parser code', () => {
    expect(answer('HPE_INVALID_METHOD').body).toMatchObject({
      statusCode: 400,
      message: 'request method is not supported',
    });
    const other = answer('HPE_INVALID_CHUNK_SIZE');
    expect(other.body).toMatchObject({ statusCode: 400, message: 'request is not valid HTTP/1.1' });
    expect(JSON.stringify(other)).not.toContain('HPE_');
  });

  it('declares the byte length of the body it sends', () => {
    const { head, body } = answer('HPE_HEADER_OVERFLOW');
    const length = head.find((line) => line.startsWith('content-length: '));
    expect(length).toBe(`content-length: ${Buffer.byteLength(JSON.stringify(body))}`);
  });

  it('writes nothing to a connection that is already gone or was reset', () => {
    const gone = fakeSocket({ destroyed: true });
    answerClientError({ code: 'HPE_HEADER_OVERFLOW' }, gone as unknown as Duplex);
    const reset = fakeSocket();
    answerClientError({ code: 'ECONNRESET' }, reset as unknown as Duplex);
    expect(gone.written).toBe('');
    expect(reset.written).toBe('');
  });
});
