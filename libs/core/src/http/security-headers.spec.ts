import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import Fastify, { type FastifyInstance } from 'fastify';
import helmet from 'helmet';
import { type IncomingMessage, type ServerResponse, createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';

import {
  defaultSecurityHeaders,
  installSecurityHeaders,
  securityHeaders,
} from './security-headers';

type Headers = Record<string, string | string[] | undefined>;

/** The headers of the answer to GET `path` on 127.0.0.1:`port`. */
function headersOf(port: number, path: string): Promise<Headers> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path }, (res) => {
      res.resume();
      resolve(res.headers);
    })
      .on('error', reject)
      .end();
  });
}

/** The headers helmet's own middleware puts on a real response of a real server. */
async function headersHelmetSets(): Promise<Headers> {
  const middleware = helmet();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    middleware(req, res, () => res.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await headersOf((server.address() as AddressInfo).port, '/');
  } finally {
    server.close();
  }
}

describe('security headers', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    installSecurityHeaders(app);
    app.get('/thing', () => ({ ok: true }));
    app.get('/broken', () => {
      throw new Error('broken');
    });
    await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(() => app.close());

  it('are the headers helmet itself would set, worked out once', async () => {
    const expected = await headersHelmetSets();
    const computed = defaultSecurityHeaders();

    for (const [name, value] of Object.entries(computed)) expect(expected[name]).toBe(value);
    // Nor is any header helmet set missing: only Node's own framing headers are left out.
    const framing = new Set(['date', 'connection', 'keep-alive', 'content-length']);
    const helmetSet = Object.keys(expected).filter((name) => !framing.has(name));
    expect(Object.keys(computed).sort()).toEqual(helmetSet.sort());
    expect(Object.keys(computed).length).toBeGreaterThanOrEqual(10);
    expect(computed).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'cross-origin-opener-policy': 'same-origin',
    });
    expect(computed['content-security-policy']).toContain("frame-ancestors 'self'");
    expect(defaultSecurityHeaders()).toBe(computed);
  });

  it('follow the options given', () => {
    const headers = securityHeaders({ frameguard: { action: 'deny' }, hsts: false });

    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['strict-transport-security']).toBeUndefined();
  });

  it('are on every response: a route, an unknown path, a failure', async () => {
    for (const url of ['/thing', '/nowhere', '/broken']) {
      const headers = await headersOf((app.server.address() as AddressInfo).port, url);

      expect(headers).toMatchObject(defaultSecurityHeaders());
    }
  });
});
