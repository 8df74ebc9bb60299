import { Writable } from 'node:stream';

import { loadConfig } from '../config/app-config';
import { RequestContext } from '../context/request-context';
import { REDACTED } from './log-redaction';
import { createRootLogger } from './logger';

/** A root logger writing into memory; returns the parsed lines written so far. */
function capturedLogger(): { logger: ReturnType<typeof createRootLogger>; lines: () => any[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      chunks.push(chunk.toString('utf8'));
      done();
    },
  });
  const logger = createRootLogger(loadConfig({ LOG_LEVEL: 'debug' }), 'orders', {
    write: (line: string) => sink.write(line),
  });
  return {
    logger,
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line)),
  };
}

describe('the root logger', () => {
  const secrets = {
    password: 'correct horse battery',
    token: 'tok_visa',
    refreshToken: 'r'.repeat(43),
    accessToken: 'eyJhbGciOiJSUzI1NiJ9.payload.signature',
    paymentToken: 'tok_declined',
    key: '-----BEGIN PRIVATE KEY-----',
    authorization: 'Bearer eyJhbGciOiJSUzI1NiJ9.payload.signature',
    cookie: 'session=abcdef',
  };

  it('writes JSON lines with level, time, service and message', () => {
    const { logger, lines } = capturedLogger();

    logger.info({ msg: 'listening', port: 3000 });

    expect(lines()[0]).toMatchObject({
      level: 'info',
      service: 'orders',
      msg: 'listening',
      port: 3000,
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
  });

  it('redacts credentials, tokens and keys at the top level', () => {
    const { logger, lines } = capturedLogger();

    logger.warn({ msg: 'attempt', ...secrets });

    const [line] = lines();
    for (const field of Object.keys(secrets)) expect(line[field]).toBe(REDACTED);
  });

  it('redacts them when nested inside logged objects, as in headers and payloads', () => {
    const { logger, lines } = capturedLogger();

    logger.warn({
      msg: 'nested',
      request: { headers: { authorization: secrets.authorization, cookie: secrets.cookie } },
      details: { account: { credentials: { password: secrets.password } } },
      event: { paymentMethod: { token: secrets.token } },
    });

    const text = JSON.stringify(lines());
    for (const value of Object.values(secrets)) expect(text).not.toContain(value);
    expect(lines()[0].request.headers).toEqual({ authorization: REDACTED, cookie: REDACTED });
  });

  it('leaves the logged object itself unchanged', () => {
    const { logger } = capturedLogger();
    const logged = { msg: 'kept', account: { password: secrets.password } };

    logger.info(logged);

    expect(logged.account.password).toBe(secrets.password);
  });

  it('drops request bodies whole, and logs a request as its method only', () => {
    const { logger, lines } = capturedLogger();

    logger.info({
      msg: 'with bodies',
      body: { email: 'ada@example.com', password: secrets.password },
      req: { method: 'POST', url: '/auth/login?email=ada', headers: { authorization: 'x' } },
      context: { reply: { body: { accessToken: secrets.accessToken } } },
    });

    const [line] = lines();
    expect(line.body).toBe('[dropped]');
    expect(line.req).toEqual({ method: 'POST' });
    expect(JSON.stringify(line)).not.toContain('ada@example.com');
    expect(JSON.stringify(line)).not.toContain(secrets.accessToken);
  });

  it('adds the correlation id, trace context and user id of the current request', () => {
    const { logger, lines } = capturedLogger();
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

    RequestContext.run({ correlationId: 'corr-1', traceparent }, () => {
      RequestContext.setActor({ id: 'user-1', roles: ['customer'] });
      logger.info({ msg: 'inside' });
    });
    logger.info({ msg: 'outside' });

    const [inside, outside] = lines();
    expect(inside).toMatchObject({ correlationId: 'corr-1', traceparent, userId: 'user-1' });
    expect(outside).not.toHaveProperty('correlationId');
  });

  it('writes nothing below its level', () => {
    const chunks: string[] = [];
    const logger = createRootLogger(loadConfig({ LOG_LEVEL: 'warn' }), 'auth', {
      write: (line: string) => void chunks.push(line),
    });

    logger.info({ msg: 'not written' });
    logger.warn({ msg: 'written' });

    expect(chunks).toHaveLength(1);
  });
});
