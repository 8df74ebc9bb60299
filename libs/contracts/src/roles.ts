/** Roles a Portcullis account can hold. New accounts get `customer` only. */
export const ROLES = ['customer', 'admin', 'auditor'] as const;

export type Role = (typeof ROLES)[number];

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}
