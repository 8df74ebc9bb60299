#!/usr/bin/env node
// Summarises a V8 CPU profile (node --cpu-prof): self time by function and by origin (a
// package, Node's internals, the product's own code, the garbage collector), optionally only
// for samples inside a window of the monotonic clock (microseconds, as `bench:flow` prints
// it), so start-up and shut-down do not count.
//
//   node bench/flow/profile-summary.mjs <file.cpuprofile> [--from µs --to µs] [--top N]
//                                       [--cpu-ms-per-order ms]
import { readFileSync } from 'node:fs';

/** Where a function comes from: an npm package, node's internals, the product, or V8. */
export function origin(url, name) {
  if (!url) {
    if (name === '(garbage collector)') return 'gc';
    if (name === '(idle)') return 'idle';
    if (name === '(program)') return 'program (native, outside JS)';
    return 'native';
  }
  const packaged = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (packaged) return packaged[1];
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const product = /\/dist\/((?:apps|libs)\/[^/]+)/.exec(url);
  if (product) return product[1];
  return url;
}

/** The areas of an order's CPU time, tested in order against a call frame. */
const AREAS = [
  ['gc', (f) => f.functionName === '(garbage collector)'],
  [
    'messaging: envelopes, sign, verify',
    (f) => /^(signOneShot|verifyOneShot)$/.test(f.functionName) || /libs\/messaging/.test(f.url),
  ],
  [
    'NATS client, Nest microservices',
    (f) => /nats-core|jetstream|transport-node|microservices/.test(f.url),
  ],
  [
    'database: TypeORM, pg, sealed columns',
    (f) => /typeorm|\/pg\/|pg-protocol|pg-pool|libs\/core\/src\/(database|encryption)/.test(f.url),
  ],
  [
    'security: guard, tokens, rate limits',
    (f) => /libs\/security|passport|jsonwebtoken|throttler/.test(f.url),
  ],
  ['validation, transformation', (f) => /class-validator|class-transformer/.test(f.url)],
  ['logging', (f) => /pino|sonic-boom/.test(f.url)],
  ['audit', (f) => /libs\/audit/.test(f.url)],
  [
    'HTTP, Nest request pipeline',
    (f) =>
      /fastify|find-my-way|helmet|node:_http_|@nestjs\/(core|common|platform-fastify)/.test(f.url),
  ],
  ['product services', (f) => /\/dist\/apps\//.test(f.url)],
];

/**
 * The area a sample belongs to: the first frame, from the sampled function up its callers,
 * that names one. A socket write issued by pg counts as database time, one issued by Fastify
 * as HTTP time, and so on.
 */
function areaOf(id, nodes, parents) {
  for (let current = id; current !== undefined; current = parents.get(current)) {
    const frame = nodes.get(current).callFrame;
    const area = AREAS.find(([, test]) => test(frame));
    if (area) return area[0];
  }
  return 'other: microtasks, timers, native';
}

/** Self milliseconds by function, by origin and by area, for samples in [from, to] (µs). */
export function summarise(profile, { from = -Infinity, to = Infinity } = {}) {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parents.set(child, node.id);
  const selfUs = new Map();
  let time = profile.startTime;
  for (let i = 0; i < profile.samples.length; i += 1) {
    time += profile.timeDeltas[i];
    // A sample stands for the interval up to the next one.
    const next = profile.timeDeltas[i + 1] ?? 0;
    if (time < from || time > to) continue;
    const id = profile.samples[i];
    selfUs.set(id, (selfUs.get(id) ?? 0) + next);
  }
  const byFunction = new Map();
  const byOrigin = new Map();
  const byArea = new Map();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const { callFrame } = nodes.get(id);
    const where = origin(callFrame.url, callFrame.functionName);
    if (where === 'idle') {
      idle += us;
      continue;
    }
    total += us;
    const file = callFrame.url.replace(/^.*node_modules\//, '').replace(/^.*\/dist\//, '');
    const name = `${callFrame.functionName || '(anonymous)'} ${file}:${callFrame.lineNumber + 1}`;
    byFunction.set(name, (byFunction.get(name) ?? 0) + us);
    byOrigin.set(where, (byOrigin.get(where) ?? 0) + us);
    const area = areaOf(id, nodes, parents);
    byArea.set(area, (byArea.get(area) ?? 0) + us);
  }
  const ranked = (map) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .map(([key, us]) => ({ key, ms: us / 1000, share: total ? us / total : 0 }));
  return {
    busyMs: total / 1000,
    idleMs: idle / 1000,
    functions: ranked(byFunction),
    origins: ranked(byOrigin),
    areas: ranked(byArea),
  };
}

/**
 * Prints the top origins and functions with their share of self time. With `cpuMsPerOrder`
 * (the process's CPU time per order, from /proc), each share is also given as CPU µs per
 * order: on a busy machine the sampler also counts time the thread waited for a core, so the
 * profile's own milliseconds overstate the cost, while the shares stay usable.
 */
export function printSummary(title, summary, top = 20, cpuMsPerOrder = undefined) {
  const pct = (share) => `${(share * 100).toFixed(1).padStart(5)} %`;
  const per = (share) =>
    cpuMsPerOrder ? ` ${(share * cpuMsPerOrder * 1000).toFixed(0).padStart(6)} µs/order` : '';
  const lines = [
    `${title}: ${summary.busyMs.toFixed(0)} ms sampled busy, ${summary.idleMs.toFixed(0)} ms idle`,
    '  by area (each sample counts for the innermost frame that belongs to one):',
    ...summary.areas.map((a) => `    ${pct(a.share)}${per(a.share)}  ${a.key}`),
    '  by origin (self time):',
    ...summary.origins.slice(0, top).map((o) => `    ${pct(o.share)}${per(o.share)}  ${o.key}`),
    '  by function (self time):',
    ...summary.functions.slice(0, top).map((f) => `    ${pct(f.share)}${per(f.share)}  ${f.key}`),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const flag = (name) => {
    const at = args.indexOf(name);
    return at >= 0 ? Number(args[at + 1]) : undefined;
  };
  const files = args.filter((arg, i) => !arg.startsWith('--') && !args[i - 1]?.startsWith('--'));
  for (const file of files) {
    const profile = JSON.parse(readFileSync(file, 'utf8'));
    const summary = summarise(profile, { from: flag('--from'), to: flag('--to') });
    printSummary(file, summary, flag('--top') ?? 25, flag('--cpu-ms-per-order'));
  }
}
