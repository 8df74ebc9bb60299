import type { Actor } from '@portcullis/core';

import { mayAccess, ownerScope, seesEverything } from './ownership';

const ALICE = '3f0b2c1e-8d4a-4c1b-9e6f-1a2b3c4d5e6f';
const BOB = '7c9d8e2f-1b3a-4d5c-8e7f-6a5b4c3d2e1f';

const customer: Actor = { id: ALICE, roles: ['customer'] };
const admin: Actor = { id: BOB, roles: ['customer', 'admin'] };
const auditor: Actor = { id: BOB, roles: ['auditor'] };
const nobody: Actor = { id: BOB, roles: [] };

describe('ownership', () => {
  describe(seesEverything.name, () => {
    it.each<[string, Actor, boolean]>([
      ['a customer', customer, false],
      ['an admin', admin, true],
      ['an auditor', auditor, false],
      ['an actor without roles', nobody, false],
    ])('for %s: %s', (_, actor, expected) => {
      expect(seesEverything(actor)).toBe(expected);
    });
  });

  describe(mayAccess.name, () => {
    it.each<[string, Actor, string, boolean]>([
      ['a customer, own resource', customer, ALICE, true],
      ["a customer, someone else's resource", customer, BOB, false],
      ["an admin, someone else's resource", admin, ALICE, true],
      ["an auditor, someone else's resource", auditor, ALICE, false],
      ['an actor without roles, own resource', nobody, BOB, true],
      ['a customer, an empty owner id', customer, '', false],
    ])('for %s: %s', (_, actor, ownerId, expected) => {
      expect(mayAccess(actor, ownerId)).toBe(expected);
    });
  });

  describe(ownerScope.name, () => {
    it('restricts a customer to their own id', () => {
      expect(ownerScope(customer)).toBe(ALICE);
    });

    it('restricts an auditor to their own id', () => {
      expect(ownerScope(auditor)).toBe(BOB);
    });

    it('does not restrict an admin', () => {
      expect(ownerScope(admin)).toBeUndefined();
    });
  });
});
