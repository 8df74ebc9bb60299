import { describe, expect, it, jest } from '@jest/globals';

import { RevocationList } from './revocation-list';

describe(RevocationList.name, () => {
  const SESSION = '6f1c0d52-2d1b-4b44-9d1e-7f2f4a9b8c01';

  it('reports a revoked session until its tokens can no longer be valid', () => {
    jest.useFakeTimers({ now: 1_000_000 });
    const list = new RevocationList();
    list.revoke(SESSION, 1_060_000);
    expect(list.isRevoked(SESSION)).toBe(true);
    jest.setSystemTime(1_060_001);
    expect(list.isRevoked(SESSION)).toBe(false);
    expect(list.size).toBe(0);
    jest.useRealTimers();
  });

  it('tells listeners once per newly revoked session', () => {
    const list = new RevocationList();
    const heard: string[] = [];
    list.onRevoked((sessionId) => heard.push(sessionId));
    list.revoke(SESSION, Date.now() + 10_000);
    list.revoke(SESSION, Date.now() + 20_000);
    expect(heard).toEqual([SESSION]);
  });

  it('ignores revocations that no longer matter, and unknown or missing sessions', () => {
    const list = new RevocationList();
    list.revoke(SESSION, Date.now() - 1);
    expect(list.isRevoked(SESSION)).toBe(false);
    expect(list.isRevoked(undefined)).toBe(false);
  });
});
