import type { ExecutionContext, Type } from '@nestjs/common';

/** A request as much of it as the guards read: headers, method, route, user, ip. */
export interface FakeRequest {
  headers: Record<string, string | undefined>;
  method: string;
  ip: string;
  routeOptions: { url: string };
  user?: unknown;
  [key: symbol]: unknown;
}

/** A fresh request with the given headers. */
export function fakeRequest(headers: Record<string, string> = {}): FakeRequest {
  return { headers, method: 'GET', ip: '203.0.113.9', routeOptions: { url: '/test' } };
}

/** An HTTP execution context for one handler of a controller class. */
export function httpContext(
  request: FakeRequest,
  controller: Type,
  handler: (...args: never[]) => unknown,
): ExecutionContext {
  const response = { header: () => response, status: () => response, send: () => response };
  return {
    getType: () => 'http',
    getClass: () => controller,
    getHandler: () => handler,
    getArgs: () => [request, response],
    getArgByIndex: (index: number) => [request, response][index],
    switchToHttp: () => ({
      getRequest: () => request,
      getResponse: () => response,
      getNext: () => undefined,
    }),
    switchToRpc: () => {
      throw new Error('not an rpc context');
    },
    switchToWs: () => {
      throw new Error('not a ws context');
    },
  } as unknown as ExecutionContext;
}

/** A message-handler execution context carrying `data` as the handler's payload. */
export function rpcContext(
  data: unknown,
  controller: Type,
  handler: (...args: never[]) => unknown,
): ExecutionContext {
  return {
    getType: () => 'rpc',
    getClass: () => controller,
    getHandler: () => handler,
    getArgs: () => [data, {}],
    getArgByIndex: (index: number) => [data, {}][index],
    switchToRpc: () => ({ getData: () => data, getContext: () => ({}) }),
    switchToHttp: () => {
      throw new Error('not an http context');
    },
    switchToWs: () => {
      throw new Error('not a ws context');
    },
  } as unknown as ExecutionContext;
}
