#!/usr/bin/env node
// `npm test`: unit tests, then the end-to-end suite against every shape this machine can run.
// Embedded (one process, PGlite, in-process bus) always runs. With TEST_DATABASE_URL and
// TEST_NATS_URL set, the suite also runs one process on PostgreSQL and NATS, and the split
// shape (three processes from the build output, as the containers run them).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

/* eslint-disable no-console -- this script reports to the terminal */
const jest = ['--experimental-vm-modules', 'node_modules/jest/bin/jest.js'];
const real = Boolean(process.env.TEST_DATABASE_URL && process.env.TEST_NATS_URL);
const shapes = real ? ['embedded', 'postgres-nats', 'split'] : ['embedded'];
mkdirSync('.e2e', { recursive: true });

function run(label, command, args, env = {}) {
  console.log(`\n=== ${label}`);
  const result = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  return result.status ?? 1;
}

function counts(file) {
  try {
    const report = JSON.parse(readFileSync(file, 'utf8'));
    return {
      passed: report.numPassedTests,
      failed: report.numFailedTests + report.numRuntimeErrorTestSuites,
    };
  } catch {
    return { passed: 0, failed: 1 };
  }
}

/**
 * Suites that belong to one shape: the fault, transport-security and key-rotation suites need
 * the split shape's own nats-server; the PostgreSQL TLS suite starts a cluster of its own, once;
 * the audit tampering suite needs a PostgreSQL superuser.
 */
const SHAPE_ONLY = {
  faults: 'split',
  'transport-security': 'split',
  'service-key-rotation': 'split',
  'database-tls': 'postgres-nats',
  'audit-tamper': 'postgres-nats',
};

const results = [];
const unitStatus = run('unit tests', process.execPath, [
  ...jest,
  '--selectProjects',
  'unit',
  '--json',
  '--outputFile=.e2e/unit.json',
]);
results.push(['unit', counts('.e2e/unit.json'), unitStatus]);

const buildStatus = run('build', 'npx', ['nest', 'build']);
if (buildStatus !== 0) results.push(['build', { passed: 0, failed: 1 }, buildStatus]);

if (buildStatus === 0) {
  for (const shape of shapes) {
    const file = `.e2e/e2e-${shape}.json`;
    const elsewhere = Object.entries(SHAPE_ONLY)
      .filter(([, only]) => only !== shape)
      .map(([suite]) => `/test/e2e/${suite}\\.e2e-spec\\.ts$`);
    const status = run(
      `end-to-end: ${shape} shape`,
      process.execPath,
      [
        ...jest,
        '--selectProjects',
        'e2e',
        '--runInBand',
        '--json',
        `--outputFile=${file}`,
        ...(elsewhere.length ? ['--testPathIgnorePatterns', ...elsewhere] : []),
      ],
      { E2E_SHAPES: shape },
    );
    results.push([`e2e ${shape}`, counts(file), status]);
  }
}

console.log('\n=== summary');
if (!real) {
  console.log('shapes not run: postgres-nats and split (set TEST_DATABASE_URL and TEST_NATS_URL)');
}
let passed = 0;
let failed = 0;
for (const [label, c, status] of results) {
  console.log(
    `${label.padEnd(20)} ${c.passed} passed, ${c.failed} failed${status ? ` (exit ${status})` : ''}`,
  );
  passed += c.passed;
  failed += c.failed + (status && c.failed === 0 ? 1 : 0);
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
