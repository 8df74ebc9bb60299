// What Linux says about a process: CPU time (user + system, all threads) and peak resident
// memory (VmHWM), read from /proc.
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** User + system CPU milliseconds of a process so far, or undefined once it has gone. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    return (ticks * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** Peak resident set size in MiB (VmHWM), or undefined once the process has gone. */
export function peakRssMiB(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^VmHWM:\s+(\d+) kB/m.exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** CPU milliseconds of many processes, by pid. */
export function cpuSnapshot(pids) {
  return new Map(pids.map((pid) => [pid, cpuMs(pid)]));
}

/** CPU milliseconds spent between two snapshots by the pids present in both. */
export function cpuSpent(before, after) {
  let total = 0;
  for (const [pid, end] of after) {
    const start = before.get(pid);
    if (start !== undefined && end !== undefined) total += end - start;
  }
  return total;
}
