/** The services that make up Portcullis. Each owns its HTTP routes, schema and signing key. */
export const SERVICE_NAMES = ['auth', 'orders', 'billing'] as const;

export type ServiceName = (typeof SERVICE_NAMES)[number];

export function isServiceName(value: unknown): value is ServiceName {
  return typeof value === 'string' && (SERVICE_NAMES as readonly string[]).includes(value);
}
