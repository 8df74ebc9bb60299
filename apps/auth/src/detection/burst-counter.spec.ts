import { BurstCounter } from './burst-counter';

const SECOND = 1000;

function counter(overrides: Partial<ConstructorParameters<typeof BurstCounter>[0]> = {}) {
  return new BurstCounter({
    threshold: 3,
    windowMs: 60 * SECOND,
    maxKeys: 100,
    quietMs: 0,
    ...overrides,
  });
}

/** Hits `key` at each time (in seconds) and returns the times that completed a burst. */
function burstsAt(bursts: BurstCounter, key: string, seconds: number[]): number[] {
  return seconds.filter((second) => bursts.hit(key, second * SECOND));
}

describe(BurstCounter.name, () => {
  describe('counting within the window', () => {
    it('reports a burst on the occurrence that reaches the threshold, not before', () => {
      expect(burstsAt(counter(), 'ada', [0, 10, 20])).toEqual([20]);
    });

    it('reports nothing when the occurrences are spread wider than the window', () => {
      expect(burstsAt(counter(), 'ada', [0, 40, 61, 102, 130])).toEqual([]);
    });

    it('slides: the window ends at the latest occurrence, not at a fixed boundary', () => {
      expect(burstsAt(counter(), 'ada', [0, 50, 70, 100])).toEqual([100]);
    });

    it('counts each key on its own', () => {
      const bursts = counter();

      expect(burstsAt(bursts, 'ada', [0, 1])).toEqual([]);
      expect(burstsAt(bursts, 'grace', [2, 3])).toEqual([]);
      expect(burstsAt(bursts, 'ada', [4])).toEqual([4]);
    });

    it('counts an occurrence that arrives late at its own time', () => {
      const bursts = counter();

      expect(burstsAt(bursts, 'ada', [100, 110])).toEqual([]);
      expect(burstsAt(bursts, 'ada', [30])).toEqual([]);
      expect(burstsAt(bursts, 'ada', [105])).toEqual([105]);
    });
  });

  describe('after a burst', () => {
    it('starts counting again, so the next burst needs the threshold again', () => {
      expect(burstsAt(counter(), 'ada', [0, 1, 2, 3, 4, 5, 6, 7, 8])).toEqual([2, 5, 8]);
    });

    it('does not count a late occurrence from before the burst', () => {
      const bursts = counter();

      expect(burstsAt(bursts, 'ada', [10, 11, 12])).toEqual([12]);
      expect(burstsAt(bursts, 'ada', [9, 8, 13, 14])).toEqual([]);
      expect(burstsAt(bursts, 'ada', [15])).toEqual([15]);
    });

    it('with a quiet time, reports at most one burst per quiet time however long a flood lasts', () => {
      const bursts = counter({ quietMs: 60 * SECOND });
      const everySecondForFiveMinutes = Array.from({ length: 300 }, (_, second) => second);

      expect(burstsAt(bursts, 'orders', everySecondForFiveMinutes)).toEqual([2, 62, 122, 182, 242]);
    });

    it('with a quiet time, reports the next burst once the quiet time is over', () => {
      const bursts = counter({ quietMs: 60 * SECOND });

      expect(burstsAt(bursts, 'orders', [0, 1, 2, 3, 4, 5])).toEqual([2]);
      expect(burstsAt(bursts, 'orders', [200, 201, 202])).toEqual([202]);
    });
  });

  describe('memory', () => {
    it('never keeps more keys than its cap, forgetting the least recently seen', () => {
      const bursts = counter({ maxKeys: 100 });

      for (let user = 0; user < 5000; user += 1) bursts.hit(`user-${user}`, 1);

      expect(bursts.size).toBeLessThanOrEqual(100);
      expect(bursts.size).toBeGreaterThanOrEqual(90);
      expect(burstsAt(bursts, 'user-4999', [2, 3])).toEqual([3]);
      expect(burstsAt(bursts, 'user-0', [2, 3])).toEqual([]);
    });

    it('forgets keys whose window has passed', () => {
      const bursts = counter();

      for (let user = 0; user < 50; user += 1) bursts.hit(`user-${user}`, 0);
      expect(bursts.size).toBe(50);
      bursts.hit('someone-else', 61 * SECOND);

      expect(bursts.size).toBe(1);
    });

    it('keeps a key through its quiet time, so a flood cannot reset it by pausing', () => {
      const bursts = counter({ windowMs: 10 * SECOND, quietMs: 60 * SECOND });

      expect(burstsAt(bursts, 'orders', [0, 1, 2])).toEqual([2]);
      bursts.hit('someone-else', 30 * SECOND);

      expect(burstsAt(bursts, 'orders', [40, 41, 42])).toEqual([]);
    });
  });
});
