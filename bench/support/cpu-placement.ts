import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Where the benchmark's processes run. `shared`: every process may run on every CPU, as the OS
 * schedules them. `split`: the benchmark process (the app and its workers) on CPU 0, the Redis
 * processes on the others, so that neither preempts the other: on 2 cores, one for the app and one
 * for Redis, whether Redis is one server or a Cluster's masters.
 */
export type Placement = 'shared' | 'split';

/** The placements this machine can run: `split` needs 2 CPUs or more and `taskset` (util-linux). */
export function placements(): Placement[] {
  if (cpus().length < 2) return ['shared'];
  try {
    execFileSync('taskset', ['-p', String(process.pid)], { stdio: 'ignore' });
    return ['shared', 'split'];
  } catch {
    return ['shared'];
  }
}

/** Moves this process (every thread) and the Redis processes `redisPids` to the CPUs of `placement`. */
export function place(placement: Placement, redisPids: readonly number[]): void {
  // The machine's CPUs, not availableParallelism(): that counts only those this process is pinned to.
  const count = cpus().length;
  const all = `0-${count - 1}`;
  pin(process.pid, placement === 'split' ? '0' : all);
  for (const pid of redisPids) pin(pid, placement === 'split' ? `1-${count - 1}` : all);
}

function pin(pid: number, cpuList: string): void {
  execFileSync('taskset', ['-a', '-pc', cpuList, String(pid)], { stdio: 'ignore' });
}
