/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Microseconds of this process's CPU time (user and system) for `iterations` calls of
 * `check`, one after another. A call that returns a promise is awaited; a synchronous check
 * is not, so that its figure holds no microtask of the benchmark's own.
 */
async function cpuMicrosecondsPerCall(check: () => unknown, iterations: number): Promise<number> {
  const started = process.cpuUsage();
  for (let i = 0; i < iterations; i++) {
    const result = check();
    if (result instanceof Promise) await result;
  }
  const used = process.cpuUsage(started);
  return (used.user + used.system) / iterations;
}

/**
 * Microseconds of this process's CPU time per call of `check`, as the median of `runs` runs
 * of `iterations` calls each, after one untimed warm-up run. CPU time rather than wall time,
 * so that other work on a shared machine does not count against the code under test.
 */
export async function microsecondsPerCheck(
  check: () => unknown,
  iterations: number,
  runs = 5,
): Promise<number> {
  await cpuMicrosecondsPerCall(check, iterations);
  const results: number[] = [];
  for (let run = 0; run < runs; run++) {
    results.push(await cpuMicrosecondsPerCall(check, iterations));
  }
  return median(results);
}

/** Two checks measured in alternation, and how they compare. */
export interface PairedFigures {
  /** Median microseconds per call of the first check. */
  readonly first: number;
  /** Median microseconds per call of the second check. */
  readonly second: number;
  /** Median of the per-pair ratios first / second, with their smallest and largest. */
  readonly ratio: number;
  readonly lowest: number;
  readonly highest: number;
}

/**
 * Measures two checks in `pairs` back-to-back pairs of runs (which one goes first alternates),
 * and reports the median of the per-pair ratios. A machine whose speed drifts (other work, clock
 * changes) moves both halves of a pair alike, so the ratio is far steadier than one of two
 * medians taken minutes apart.
 */
export async function pairedMicroseconds(
  first: () => unknown,
  second: () => unknown,
  iterations: number,
  pairs = 9,
): Promise<PairedFigures> {
  await cpuMicrosecondsPerCall(first, iterations);
  await cpuMicrosecondsPerCall(second, iterations);
  const a: number[] = [];
  const b: number[] = [];
  const ratios: number[] = [];
  for (let pair = 0; pair < pairs; pair++) {
    let x: number;
    let y: number;
    if (pair % 2 === 0) {
      x = await cpuMicrosecondsPerCall(first, iterations);
      y = await cpuMicrosecondsPerCall(second, iterations);
    } else {
      y = await cpuMicrosecondsPerCall(second, iterations);
      x = await cpuMicrosecondsPerCall(first, iterations);
    }
    a.push(x);
    b.push(y);
    ratios.push(x / y);
  }
  return {
    first: median(a),
    second: median(b),
    ratio: median(ratios),
    lowest: Math.min(...ratios),
    highest: Math.max(...ratios),
  };
}

/** Formats rows as a Markdown table, so the output can go into the README as it is. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
