/** Median of a list of numbers. */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/**
 * Microseconds of this process's CPU time (user and system) per call of `check`, as the
 * median of `runs` runs of `iterations` calls each, after one untimed warm-up run. Calls run
 * one after another, each awaited. CPU time rather than wall time, so that other work on a
 * shared machine does not count against the code under test.
 */
export async function microsecondsPerCheck(
  check: () => unknown,
  iterations: number,
  runs = 5,
): Promise<number> {
  const once = async (): Promise<number> => {
    const started = process.cpuUsage();
    for (let i = 0; i < iterations; i++) await check();
    const used = process.cpuUsage(started);
    return (used.user + used.system) / iterations;
  };
  await once();
  const results: number[] = [];
  for (let run = 0; run < runs; run++) results.push(await once());
  return median(results);
}

/** Formats rows as a Markdown table, so the output can go into the README as it is. */
export function table(header: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const widths = header.map((cell, i) => Math.max(cell.length, ...rows.map((r) => r[i].length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((cell, i) => cell.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}
