import { describe, expect, it } from '@jest/globals';
import type { FastifyReply, FastifyRequest } from 'fastify';

import { answerRouterError } from './router-error';

/** A reply that keeps its status, headers and body. */
function fakeReply() {
  const state = { status: 0, headers: {} as Record<string, string>, body: '' };
  const reply = {
    code(status: number) {
      state.status = status;
      return reply;
    },
    header(name: string, value: string) {
      state.headers[name] = value;
      return reply;
    },
    headers(values: Record<string, string>) {
      Object.assign(state.headers, values);
      return reply;
    },
    send(body: string) {
      state.body = body;
      return reply;
    },
  };
  return { reply: reply as unknown as FastifyReply, state };
}

function answer(code: string) {
  const { reply, state } = fakeReply();
  const request = { id: 'c0ffee00-0000-4000-8000-000000000001' } as FastifyRequest;
  answerRouterError({ code }, request, reply);
  return { ...state, body: JSON.parse(state.body) as Record<string, unknown> };
}

describe('answerRouterError', () => {
  it('answers a path with bad percent-encoding with 400 in the one error body', () => {
    const { status, headers, body } = answer('FST_ERR_BAD_URL');

    expect(status).toBe(400);
    expect(body).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'request path is not valid percent-encoded UTF-8',
      correlationId: 'c0ffee00-0000-4000-8000-000000000001',
    });
    expect(headers).toMatchObject({
      'content-type': 'application/json; charset=utf-8',
      'x-correlation-id': 'c0ffee00-0000-4000-8000-000000000001',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
    });
    expect(headers['content-security-policy']).toContain("default-src 'self'");
    expect(headers['strict-transport-security']).toMatch(/^max-age=\d+/);
  });

  it('answers an over-long path parameter with 414', () => {
    const { status, body } = answer('FST_ERR_MAX_PARAM_LENGTH');

    expect(status).toBe(414);
    expect(body).toMatchObject({ statusCode: 414, error: 'URI Too Long' });
  });

  it('answers any other router error with the generic 500 body, naming no code', () => {
    const { status, body } = answer('FST_ERR_ASYNC_CONSTRAINT');

    expect(status).toBe(500);
    expect(body).toMatchObject({ statusCode: 500, message: 'internal error' });
    expect(JSON.stringify(body)).not.toMatch(/FST_/);
  });
});
