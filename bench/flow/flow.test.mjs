// The arithmetic of bench:flow: quantiles, CPU time from /proc and profile summaries.
// `npm run test:bench` (node's test runner; the benchmark itself needs servers).
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';

import { quantile } from './load.mjs';
import { cpuMs, cpuSpent, peakRssMiB, schedstatWaitNs, waitMs } from './proc-stats.mjs';
import { origin, summarise } from './profile-summary.mjs';

describe('quantile', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1);

  it('takes the nearest rank, so p50 of 1..100 is 50 and p99 is 99', () => {
    assert.equal(quantile(values, 0.5), 50);
    assert.equal(quantile(values, 0.99), 99);
    assert.equal(quantile(values, 1), 100);
  });

  it('has no value without samples', () => {
    assert.ok(Number.isNaN(quantile([], 0.5)));
  });
});

describe('proc stats', () => {
  it('reads a live process its CPU time and peak memory, and nothing of a gone one', () => {
    const end = Date.now() + 50;
    while (Date.now() < end); // spend some CPU
    assert.ok(cpuMs(process.pid) > 0);
    assert.ok(peakRssMiB(process.pid) > 1);
    assert.equal(cpuMs(2 ** 30), undefined);
  });

  it('adds the CPU spent by the pids seen at both ends only', () => {
    const before = new Map([
      [1, 100],
      [2, 50],
    ]);
    const after = new Map([
      [1, 130],
      [3, 999],
    ]);
    assert.equal(cpuSpent(before, after), 30);
  });

  it("takes a thread's run-queue wait from the second field of its schedstat line", () => {
    assert.equal(schedstatWaitNs('8123456 2500000 41\n'), 2_500_000);
    assert.throws(() => schedstatWaitNs('8123456\n'), /not a schedstat line/);
  });

  it('sums the wait of every thread of a live process, and has none for a gone one', () => {
    const wait = waitMs(process.pid);
    // Kernels built without scheduler statistics have no schedstat files.
    if (existsSync('/proc/self/schedstat')) assert.ok(wait >= 0);
    else assert.equal(wait, undefined);
    assert.equal(waitMs(2 ** 30), undefined);
  });
});

describe('profile summary', () => {
  const frame = (functionName, url) => ({ functionName, url, lineNumber: 0 });
  // root -> handler (product) -> query (typeorm) -> writev (native); and idle.
  const profile = {
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 5] },
      { id: 2, callFrame: frame('place', 'file:///x/dist/apps/orders/src/o.js'), children: [3] },
      { id: 3, callFrame: frame('query', 'file:///x/node_modules/typeorm/q.js'), children: [4] },
      { id: 4, callFrame: frame('writev', ''), children: [] },
      { id: 5, callFrame: frame('(idle)', ''), children: [] },
    ],
    startTime: 0,
    samples: [2, 3, 4, 4, 5, 2],
    timeDeltas: [0, 10, 10, 10, 10, 10],
  };

  it('names where a function comes from', () => {
    assert.equal(origin('file:///x/node_modules/@nestjs/core/a.js', 'f'), '@nestjs/core');
    assert.equal(origin('node:internal/streams/readable', 'f'), 'node:internal');
    assert.equal(origin('file:///x/dist/libs/security/src/g.js', 'f'), 'libs/security');
    assert.equal(origin('', '(garbage collector)'), 'gc');
  });

  it('counts a native write under the area of its nearest caller, and leaves idle out', () => {
    const summary = summarise(profile);
    assert.equal(summary.idleMs, 0.01);
    const area = Object.fromEntries(summary.areas.map((a) => [a.key, a.ms]));
    assert.equal(area['database: TypeORM, pg, sealed columns'], 0.03);
    assert.equal(area['product services'], 0.01);
  });

  it('keeps only the samples inside the window', () => {
    const summary = summarise(profile, { from: 15, to: 35 });
    assert.equal(summary.busyMs, 0.02);
    assert.equal(summary.idleMs, 0);
  });
});
