import type { ServiceName } from '@portcullis/core';

/** The service that owns each route prefix (the public HTTP contract). */
const ROUTE_OWNERS: ReadonlyArray<[RegExp, ServiceName]> = [
  [/^\/(auth|audit|\.well-known)(\/|$)/, 'auth'],
  [/^\/(orders|products)(\/|$)/, 'orders'],
  [/^\/billing(\/|$)/, 'billing'],
];

/** Which service an HTTP path belongs to, when one process hosts several. */
export function serviceOfPath(path: string | undefined): ServiceName | undefined {
  if (!path) return undefined;
  return ROUTE_OWNERS.find(([prefix]) => prefix.test(path))?.[1];
}
