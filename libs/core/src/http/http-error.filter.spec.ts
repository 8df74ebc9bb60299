import { jest } from '@jest/globals';
import {
  type ArgumentsHost,
  BadRequestException,
  ForbiddenException,
  HttpException,
  Logger,
  NotFoundException,
} from '@nestjs/common';
import type { FastifyReply } from 'fastify';

import { RequestContext } from '../context/request-context';
import { HttpErrorFilter } from './http-error.filter';

interface SentReply {
  statusCode?: number;
  headers: Record<string, string>;
  body?: unknown;
}

/** The part of a Fastify reply the filter uses, recording what was sent. */
function fakeReply(alreadySent = false): { reply: FastifyReply; sent: SentReply } {
  const sent: SentReply = { headers: {} };
  const reply = {
    sent: alreadySent,
    header(name: string, value: string) {
      sent.headers[name] = value;
      return reply;
    },
    status(code: number) {
      sent.statusCode = code;
      return reply;
    },
    send(body: unknown) {
      sent.body = body;
      return reply;
    },
  };
  return { reply: reply as unknown as FastifyReply, sent };
}

function httpHost(reply: FastifyReply, type = 'http'): ArgumentsHost {
  const request = { id: 'request-1', method: 'POST', routeOptions: { url: '/orders' } };
  return {
    getType: () => type,
    switchToHttp: () => ({ getRequest: () => request, getResponse: () => reply }),
  } as unknown as ArgumentsHost;
}

function sendThroughFilter(exception: unknown): SentReply {
  const { reply, sent } = fakeReply();
  new HttpErrorFilter().catch(exception, httpHost(reply));
  return sent;
}

describe(HttpErrorFilter.name, () => {
  let logged: jest.SpiedFunction<Logger['error']>;

  beforeEach(() => {
    logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
  });

  afterEach(() => {
    logged.mockRestore();
  });

  describe('with an HttpException', () => {
    it('sends its status and message in the one error body', () => {
      const sent = sendThroughFilter(new NotFoundException('order not found'));

      expect(sent.statusCode).toBe(404);
      expect(sent.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'order not found',
        correlationId: 'request-1',
      });
      expect(sent.headers).toEqual({
        'x-correlation-id': 'request-1',
        'content-type': 'application/json; charset=utf-8',
      });
    });

    it('keeps a list of validation messages as a list', () => {
      const sent = sendThroughFilter(
        new BadRequestException(['items.0.quantity must be an integer number']),
      );

      expect(sent.body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: ['items.0.quantity must be an integer number'],
        correlationId: 'request-1',
      });
    });

    it('sends a plain string response as the message', () => {
      const sent = sendThroughFilter(new HttpException('slow down', 429));

      expect(sent.body).toEqual({
        statusCode: 429,
        error: 'Too Many Requests',
        message: 'slow down',
        correlationId: 'request-1',
      });
    });

    it('uses the correlation id of the current request context', () => {
      const sent = RequestContext.run({ correlationId: 'corr-77' }, () =>
        sendThroughFilter(new ForbiddenException('not yours')),
      );

      expect(sent.body).toMatchObject({ statusCode: 403, correlationId: 'corr-77' });
      expect(sent.headers['x-correlation-id']).toBe('corr-77');
    });

    it('logs nothing for a client error', () => {
      sendThroughFilter(new NotFoundException('order not found'));

      expect(logged).not.toHaveBeenCalled();
    });
  });

  describe("with Nest's router 404", () => {
    it('does not echo the path', () => {
      const sent = sendThroughFilter(new NotFoundException('Cannot GET /x<script>'));

      expect(sent.body).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'no such route',
        correlationId: 'request-1',
      });
    });
  });

  describe('with an error Fastify raised while reading the request', () => {
    it('answers a too-large body wrapped by Nest with our own wording', () => {
      const cause = Object.assign(new Error('Request body is too large'), {
        name: 'FastifyError',
        code: 'FST_ERR_CTP_BODY_TOO_LARGE',
        statusCode: 413,
      });

      const sent = sendThroughFilter(new HttpException(cause.message, 413, { cause }));

      expect(sent.body).toEqual({
        statusCode: 413,
        error: 'Payload Too Large',
        message: 'request body is too large',
        correlationId: 'request-1',
      });
    });

    it('answers an unwrapped invalid JSON body with our own wording', () => {
      const error = Object.assign(new SyntaxError('Unexpected token } in JSON at position 9'), {
        code: 'FST_ERR_CTP_INVALID_JSON_BODY',
        statusCode: 400,
      });

      expect(sendThroughFilter(error).body).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: 'request body is not valid JSON',
        correlationId: 'request-1',
      });
    });

    it('hides the library message of an error code it does not know', () => {
      const cause = { code: 'FST_ERR_SOMETHING_NEW', statusCode: 400 };

      const sent = sendThroughFilter(new HttpException('library detail', 400, { cause }));

      expect(sent.body).toMatchObject({ statusCode: 400, message: 'request is not acceptable' });
    });
  });

  describe('with any other error', () => {
    it('sends 500 internal error without the message or stack', () => {
      const error = new Error('connection to 10.0.0.5 refused: password=hunter2');

      const sent = sendThroughFilter(error);

      expect(sent.statusCode).toBe(500);
      expect(sent.body).toEqual({
        statusCode: 500,
        error: 'Internal Server Error',
        message: 'internal error',
        correlationId: 'request-1',
      });
      expect(JSON.stringify(sent.body)).not.toMatch(/hunter2|10\.0\.0\.5|at |stack/);
    });

    it('logs the stack with the correlation id and route', () => {
      const error = new Error('boom');

      sendThroughFilter(error);

      expect(logged).toHaveBeenCalledWith(
        expect.objectContaining({
          msg: 'request failed',
          correlationId: 'request-1',
          method: 'POST',
          url: '/orders',
          error: error.stack,
        }),
      );
    });

    it.each<[string, unknown]>([
      ['a thrown string', 'boom'],
      ['null', null],
      ['an error claiming a 5xx status', Object.assign(new Error('x'), { statusCode: 502 })],
      ['a 4xx status without a known code', Object.assign(new Error('x'), { statusCode: 418 })],
    ])('sends 500 for %s', (_, thrown) => {
      expect(sendThroughFilter(thrown).body).toMatchObject({
        statusCode: 500,
        message: 'internal error',
      });
    });
  });

  describe('when the response was already sent', () => {
    it('sends nothing more', () => {
      const { reply, sent } = fakeReply(true);

      new HttpErrorFilter().catch(new Error('late'), httpHost(reply));

      expect(sent).toEqual({ headers: {} });
      expect(logged).toHaveBeenCalledTimes(1);
    });
  });

  describe('outside HTTP', () => {
    it('rethrows the exception for the transport to handle', () => {
      const { reply, sent } = fakeReply();
      const error = new Error('message handler failed');

      expect(() => new HttpErrorFilter().catch(error, httpHost(reply, 'rpc'))).toThrow(error);
      expect(sent).toEqual({ headers: {} });
    });
  });
});
