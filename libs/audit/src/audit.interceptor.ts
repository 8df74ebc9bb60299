import {
  type CallHandler,
  type ExecutionContext,
  HttpException,
  Injectable,
  type NestInterceptor,
} from '@nestjs/common';
import { HTTP_CODE_METADATA } from '@nestjs/common/constants';
import { type Observable, tap } from 'rxjs';

import type { SecurityOutcome } from './security-event';
import { SecurityEvents } from './security-events.service';

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

interface AuditedRequest {
  method: string;
  params?: Record<string, string | undefined>;
  routeOptions?: { url?: string };
}

/**
 * The outcome of a request as the trail records it: a status below 400 is `allowed`; 401, 403
 * and 429 are `denied` (as is 404, which the owner checks answer for someone else's
 * resource); every other 4xx and 5xx is `failed`.
 */
export function outcomeOfStatus(status: number): SecurityOutcome {
  if (status < 400) return 'allowed';
  if ([401, 403, 404, 429].includes(status)) return 'denied';
  return 'failed';
}

/**
 * The resource a route acts on: its static segments before the first parameter, joined by
 * dots (`/billing/invoices/:id/pay` is `billing.invoices`), and the `id` parameter, else the
 * `id` of the created object in the response.
 */
export function resourceOfRoute(
  route: string,
  params: Record<string, string | undefined> | undefined,
  result?: unknown,
): { resourceType?: string; resourceId?: string } {
  const segments = route.split('/').filter(Boolean);
  const firstParam = segments.findIndex((segment) => segment.startsWith(':'));
  const fixed = firstParam === -1 ? segments : segments.slice(0, firstParam);
  const created =
    typeof result === 'object' &&
    result !== null &&
    typeof (result as { id?: unknown }).id === 'string'
      ? (result as { id: string }).id
      : undefined;
  const resourceId = params?.id ?? created;
  if (resourceId === undefined || fixed.length === 0) return {};
  return { resourceType: fixed.join('.'), resourceId };
}

/**
 * Records every state-changing HTTP request (POST, PUT, PATCH, DELETE) that reached its
 * handler as an `http.request` record: method, route pattern and status, the resource where
 * known, allowed, denied or failed. Requests that a guard refused never reach it: the guard
 * records those decisions itself.
 */
@Injectable()
export class AuditInterceptor implements NestInterceptor {
  constructor(private readonly events: SecurityEvents) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType() !== 'http') return next.handle();
    const request = context.switchToHttp().getRequest<AuditedRequest>();
    if (!STATE_CHANGING.has(request.method)) return next.handle();
    const route = request.routeOptions?.url ?? 'unknown';
    const declared = Reflect.getMetadata(HTTP_CODE_METADATA, context.getHandler()) as
      number | undefined;
    const success = declared ?? (request.method === 'POST' ? 201 : 200);

    const record = (status: number, result?: unknown): void => {
      this.events.record({
        type: 'http.request',
        outcome: outcomeOfStatus(status),
        ...resourceOfRoute(route, request.params, result),
        details: { method: request.method, route, status },
      });
    };
    return next.handle().pipe(
      tap({
        next: (result) => record(success, result),
        error: (error: unknown) => record(error instanceof HttpException ? error.getStatus() : 500),
      }),
    );
  }
}
