// What Linux says about a process: CPU time (user + system, all threads), time its threads
// waited for a core, and peak resident memory (VmHWM), read from /proc.
import { readFileSync, readdirSync } from 'node:fs';

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

/**
 * Milliseconds a process's threads have spent so far ready to run but waiting for a core (the
 * second field of each thread's `schedstat`), or undefined once the process has gone or where
 * the kernel keeps no such count. A thread that ended in between takes its count with it.
 */
export function waitMs(pid) {
  let threads;
  try {
    threads = readdirSync(`/proc/${pid}/task`);
  } catch {
    return undefined;
  }
  let ns = 0;
  let read = 0;
  for (const tid of threads) {
    try {
      ns += schedstatWaitNs(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8'));
      read += 1;
    } catch {
      // Ended since the directory was listed.
    }
  }
  return read > 0 ? ns / 1e6 : undefined;
}

/** The run-queue wait in a `schedstat` line: "<on cpu ns> <waiting ns> <timeslices>". */
export function schedstatWaitNs(line) {
  const wait = Number(line.trim().split(/\s+/)[1]);
  if (!Number.isFinite(wait)) throw new Error(`not a schedstat line: ${line}`);
  return wait;
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

/** Milliseconds many processes have waited for a core, by pid. */
export function waitSnapshot(pids) {
  return new Map(pids.map((pid) => [pid, waitMs(pid)]));
}

/** Milliseconds spent between two snapshots (of CPU or of waiting) by the pids in both. */
export function cpuSpent(before, after) {
  let total = 0;
  for (const [pid, end] of after) {
    const start = before.get(pid);
    if (start !== undefined && end !== undefined) total += end - start;
  }
  return total;
}
