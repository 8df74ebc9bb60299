import { FixedWindowRateLimitStorage } from './rate-limit-storage';

const T0 = Date.UTC(2030, 0, 1);

describe(FixedWindowRateLimitStorage.name, () => {
  let now: number;
  let storage: FixedWindowRateLimitStorage;

  beforeEach(() => {
    now = T0;
    storage = new FixedWindowRateLimitStorage(() => now);
  });

  const hit = (key = 'ip:203.0.113.9', ttl = 60_000, limit = 3) =>
    storage.increment(key, ttl, limit);

  it('admits requests up to the limit', async () => {
    const records = [await hit(), await hit(), await hit()];

    expect(records.map((r) => [r.totalHits, r.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
    ]);
  });

  it('blocks the request over the limit until the window ends, saying when', async () => {
    await hit();
    await hit();
    await hit();
    now += 20_000;

    const blocked = await hit();

    expect(blocked).toEqual({
      totalHits: 4,
      timeToExpire: 40,
      isBlocked: true,
      timeToBlockExpire: 40,
    });
  });

  it('starts a new window once the old one ended', async () => {
    for (let i = 0; i < 5; i++) await hit();
    now += 60_000;

    expect(await hit()).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('counts each key on its own', async () => {
    for (let i = 0; i < 5; i++) await hit('ip:203.0.113.9');

    expect(await hit('ip:198.51.100.1')).toMatchObject({ totalHits: 1, isBlocked: false });
  });

  it('never says to retry in less than a second', async () => {
    for (let i = 0; i < 3; i++) await hit();
    now += 59_999;

    expect((await hit()).timeToBlockExpire).toBe(1);
  });

  it('sweeps ended windows once it holds many keys', async () => {
    for (let i = 0; i < 50_000; i++) await hit(`ip:${i}`);
    now += 60_000;

    await hit('ip:new');

    expect(storage.size).toBe(1);
  });
});
