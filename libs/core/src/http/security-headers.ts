import type { FastifyInstance } from 'fastify';
import helmet, { type HelmetOptions } from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';

/**
 * The response headers helmet sets with `options` (its defaults: a content security policy,
 * HSTS, `nosniff`, frame and referrer policies and the rest), worked out once. They depend on
 * the options only, never on the request, so there is no need to build helmet's middleware
 * again for every request, as the Fastify plugin does. Options whose directives are
 * functions of the request (per-request CSP nonces) cannot be worked out once and are not
 * for this: the request they would see is empty.
 */
export function securityHeaders(options: HelmetOptions = {}): Readonly<Record<string, string>> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader(name: string, value: string | number | readonly string[]): void {
      headers[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
    },
    removeHeader(name: string): void {
      delete headers[name.toLowerCase()];
    },
  };
  helmet(options)(
    {} as IncomingMessage,
    recorder as unknown as ServerResponse,
    (error?: unknown) => {
      // Helmet throws invalid options itself; an older one passed them here.
      if (error instanceof Error) throw error;
    },
  );
  return Object.freeze(headers);
}

let defaults: Readonly<Record<string, string>> | undefined;

/** {@link securityHeaders} with helmet's defaults, the set every Portcullis response carries. */
export function defaultSecurityHeaders(): Readonly<Record<string, string>> {
  defaults ??= securityHeaders();
  return defaults;
}

/**
 * Sets the security headers on every response, from the first hook of each request on, so
 * that errors, refusals and unknown routes carry them too.
 */
export function installSecurityHeaders(fastify: FastifyInstance): void {
  const headers = Object.entries(defaultSecurityHeaders());
  fastify.addHook('onRequest', (_request, reply, done) => {
    for (const [name, value] of headers) reply.raw.setHeader(name, value);
    done();
  });
}
