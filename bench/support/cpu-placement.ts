import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Where the benchmark's processes run. `shared`: every process may run on every CPU, as the OS
 * schedules them. `split`: the benchmark process (the app and its workers) on CPU 0, the Redis
 * processes on CPU 1, so that neither preempts the other: one core for the app and one for Redis,
 * whether Redis is one server or a Cluster's masters.
 */
export type Placement = 'shared' | 'split';

/**
 * The placements this machine can run: `split` needs 2 CPUs or more and `taskset` (util-linux) allowed
 * to set this process's CPUs (tried by setting them to all, which changes nothing).
 */
export function placements(): Placement[] {
  if (cpus().length < 2) return ['shared'];
  try {
    pin(process.pid, allCpus());
    return ['shared', 'split'];
  } catch {
    return ['shared'];
  }
}

/**
 * Moves this process (every thread) and the Redis processes `redisPids` to the CPUs of `placement`:
 * with `split`, CPU 0 and CPU 1 whatever the machine has, so that one redis-server and a Cluster's
 * masters get the same one core.
 */
export function place(placement: Placement, redisPids: readonly number[]): void {
  pin(process.pid, placement === 'split' ? '0' : allCpus());
  for (const pid of redisPids) pin(pid, placement === 'split' ? '1' : allCpus());
}

/** The machine's CPUs, not availableParallelism(): that counts only those this process is pinned to. */
function allCpus(): string {
  return `0-${cpus().length - 1}`;
}

function pin(pid: number, cpuList: string): void {
  execFileSync('taskset', ['-a', '-pc', cpuList, String(pid)], { stdio: 'ignore' });
}
