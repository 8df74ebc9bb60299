import type { Actor } from '@portcullis/core';

/** Admins see and act on every customer's resources. */
export function seesEverything(actor: Actor): boolean {
  return actor.roles.includes('admin');
}

/** A customer acts only on their own resources; an admin on all. */
export function mayAccess(actor: Actor, ownerId: string): boolean {
  return seesEverything(actor) || actor.id === ownerId;
}

/** Customer id a listing is restricted to: none for admins, the actor's own otherwise. */
export function ownerScope(actor: Actor): string | undefined {
  return seesEverything(actor) ? undefined : actor.id;
}
