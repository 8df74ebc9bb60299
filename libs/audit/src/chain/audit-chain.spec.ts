import { describe, expect, it } from '@jest/globals';

import type { AuditRecord } from '../audit-record';
import { GENESIS_HASH, canonicalBytes, chainHash } from './canonical-form';
import { type StoredChainRow, verifyChain } from './chain-verifier';

const record = (n: number, extra: Partial<AuditRecord> = {}): AuditRecord => ({
  id: `3f5d1a0e-8c1b-4b7e-9a61-${String(n).padStart(12, '0')}`,
  time: '2026-12-04T10:00:00.000Z',
  service: 'orders',
  type: 'order.created',
  outcome: 'allowed',
  actor: { userId: 'u-1', roles: ['customer'], sessionId: 's-1', clientIp: '127.0.0.1' },
  resource: { type: 'order', id: `o-${n}` },
  correlationId: 'corr-1',
  details: { totalCents: 100 * n, currency: 'EUR' },
  ...extra,
});

function chainOf(records: AuditRecord[]): StoredChainRow[] {
  let prevHash = GENESIS_HASH;
  return records.map((r, index) => {
    const sequence = index + 1;
    const hash = chainHash(prevHash, { sequence, record: r });
    const row = { sequence, record: r, prevHash, hash };
    prevHash = hash;
    return row;
  });
}

const reader = (rows: StoredChainRow[]) => (after: number, limit: number) =>
  Promise.resolve(rows.filter((row) => row.sequence > after).slice(0, limit));

describe('the canonical form of a record', () => {
  it('puts the fields in one fixed order, whatever order the record was built in', () => {
    const shuffled = Object.fromEntries(Object.entries(record(1)).reverse()) as AuditRecord;

    const text = canonicalBytes({ sequence: 1, record: shuffled }).toString('utf8');

    expect(text).toBe(canonicalBytes({ sequence: 1, record: record(1) }).toString('utf8'));
    expect(Object.keys(JSON.parse(text) as object)).toEqual([
      'v',
      'sequence',
      'id',
      'time',
      'service',
      'type',
      'outcome',
      'actor',
      'resource',
      'correlationId',
      'traceparent',
      'reason',
      'details',
    ]);
  });

  it('sorts the details and writes absent fields as null', () => {
    const form = JSON.parse(
      canonicalBytes({
        sequence: 7,
        record: record(1, { details: { b: 1, a: 'x' }, actor: undefined, resource: undefined }),
      }).toString('utf8'),
    ) as Record<string, unknown>;

    expect(Object.keys(form.details as object)).toEqual(['a', 'b']);
    expect(form).toMatchObject({ actor: null, resource: null, traceparent: null, reason: null });
  });

  it('treats an empty actor, empty roles and empty details as absent', () => {
    const bare = record(1, { actor: undefined, details: undefined });
    const empty = record(1, { actor: { roles: [] }, details: {} });

    expect(canonicalBytes({ sequence: 1, record: empty })).toEqual(
      canonicalBytes({ sequence: 1, record: bare }),
    );
  });

  it('normalises the time to ISO 8601 with milliseconds in UTC', () => {
    const local = record(1, { time: '2026-12-04T11:00:00+01:00' });

    expect(canonicalBytes({ sequence: 1, record: local })).toEqual(
      canonicalBytes({ sequence: 1, record: record(1) }),
    );
  });

  it('includes the sequence number, so the same record elsewhere hashes differently', () => {
    expect(chainHash(GENESIS_HASH, { sequence: 1, record: record(1) })).not.toBe(
      chainHash(GENESIS_HASH, { sequence: 2, record: record(1) }),
    );
  });
});

describe(verifyChain.name, () => {
  it('accepts an intact chain and counts its records', async () => {
    const rows = chainOf([1, 2, 3, 4].map((n) => record(n)));

    expect(await verifyChain(reader(rows), { sequence: 4, hash: rows[3].hash })).toEqual({
      ok: true,
      records: 4,
    });
  });

  it('accepts an empty chain whose head is the genesis', async () => {
    expect(await verifyChain(reader([]), { sequence: 0, hash: GENESIS_HASH })).toEqual({
      ok: true,
      records: 0,
    });
  });

  it('names an altered record by its own hash', async () => {
    const rows = chainOf([1, 2, 3].map((n) => record(n)));
    rows[1] = { ...rows[1], record: { ...rows[1].record, outcome: 'denied' } };

    expect(await verifyChain(reader(rows))).toEqual({
      ok: false,
      records: 1,
      firstBroken: { sequence: 2, id: rows[1].record.id, reason: 'hash_mismatch' },
    });
  });

  it('names the record after a removed one as the gap', async () => {
    const rows = chainOf([1, 2, 3, 4].map((n) => record(n)));
    const removed = [rows[0], rows[2], rows[3]];

    expect((await verifyChain(reader(removed))).firstBroken).toEqual({
      sequence: 3,
      id: rows[2].record.id,
      reason: 'sequence_gap',
    });
  });

  it('names the first of two records whose contents were swapped', async () => {
    const rows = chainOf([1, 2, 3, 4].map((n) => record(n)));
    const swapped = [rows[0], { ...rows[2], sequence: 2 }, { ...rows[1], sequence: 3 }, rows[3]];

    expect((await verifyChain(reader(swapped))).firstBroken).toEqual({
      sequence: 2,
      id: rows[2].record.id,
      reason: 'prev_hash_mismatch',
    });
  });

  it('notices records removed from the end against the head', async () => {
    const rows = chainOf([1, 2, 3].map((n) => record(n)));

    expect(
      await verifyChain(reader(rows.slice(0, 2)), { sequence: 3, hash: rows[2].hash }),
    ).toEqual({
      ok: false,
      records: 2,
      firstBroken: { sequence: 3, id: null, reason: 'truncated' },
    });
  });

  it('checks the chain up to the head it was given, ignoring records appended since', async () => {
    const rows = chainOf([1, 2, 3, 4].map((n) => record(n)));

    expect(await verifyChain(reader(rows), { sequence: 2, hash: rows[1].hash })).toEqual({
      ok: true,
      records: 2,
    });
  });

  it('reads a long chain page by page', async () => {
    const rows = chainOf(Array.from({ length: 4_500 }, (_, n) => record(n + 1)));

    expect(await verifyChain(reader(rows))).toEqual({ ok: true, records: 4_500 });
  });
});
