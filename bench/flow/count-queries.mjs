// Preloaded into an app (node --import) by `bench:flow --count-queries`: counts the statements
// the process sends to PostgreSQL through `pg`, by statement text. Each SIGWINCH writes the
// counts so far to FLOW_QUERY_COUNTS_DIR/<pid>-<n>.json; the driver signals at the start and
// the end of the measured phase and subtracts. The app's code is not changed. (Nest's shutdown
// hooks take SIGUSR2 and the other usual signals; SIGWINCH is left to us.)
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';

const directory = process.env.FLOW_QUERY_COUNTS_DIR;
const require = createRequire(join(process.cwd(), 'package.json'));
const { Client } = require('pg');
const counts = new Map();
const original = Client.prototype.query;

/** The statement without literals or whitespace runs, so one shape counts once. */
function shape(config) {
  const text = typeof config === 'string' ? config : (config?.text ?? '');
  return text
    .replace(/\s+/g, ' ')
    .replace(/'[^']*'/g, "'?'")
    .trim()
    .slice(0, 160);
}

Client.prototype.query = function countedQuery(config, ...rest) {
  const key = shape(config);
  counts.set(key, (counts.get(key) ?? 0) + 1);
  return original.call(this, config, ...rest);
};

let snapshots = 0;
if (directory) {
  process.on('SIGWINCH', () => {
    snapshots += 1;
    const file = join(directory, `${process.pid}-${snapshots}.json`);
    writeFileSync(file, JSON.stringify(Object.fromEntries(counts)));
  });
}
