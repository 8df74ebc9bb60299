import { ReplayGuard } from './replay-guard';

const T0 = Date.UTC(2030, 0, 1);

describe(ReplayGuard.name, () => {
  describe('within its capacity', () => {
    it('accepts an id once and refuses it every later time', () => {
      const guard = new ReplayGuard(10, () => T0);

      expect(guard.firstSighting('a', T0 + 1000)).toBe(true);
      expect(guard.firstSighting('a', T0 + 1000)).toBe(false);
      expect(guard.firstSighting('a', T0 + 9999)).toBe(false);
      expect(guard.firstSighting('b', T0 + 1000)).toBe(true);
    });
  });

  describe('when it overflows', () => {
    it('forgets expired ids first', () => {
      const clock = { now: T0 };
      const guard = new ReplayGuard(10, () => clock.now);
      for (let i = 0; i < 5; i++) guard.firstSighting(`old-${i}`, T0 + 10);
      for (let i = 0; i < 5; i++) guard.firstSighting(`new-${i}`, T0 + 1000);
      clock.now = T0 + 500;

      guard.firstSighting('overflow', T0 + 1000);

      for (let i = 0; i < 5; i++) expect(guard.firstSighting(`new-${i}`, T0 + 1000)).toBe(false);
      expect(guard.firstSighting('overflow', T0 + 1000)).toBe(false);
      expect(guard.firstSighting('old-0', T0 + 10)).toBe(true);
    });

    it('forgets the oldest live ids down to 90% of its capacity', () => {
      const guard = new ReplayGuard(10, () => T0);
      for (let i = 0; i <= 10; i++) guard.firstSighting(`id-${i}`, T0 + 1000);

      const remembered = Array.from({ length: 11 }, (_, i) => i)
        .reverse()
        .filter((i) => !guard.firstSighting(`id-${i}`, T0 + 1000));

      expect(remembered.sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10]);
    });
  });
});
