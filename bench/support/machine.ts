import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { availableParallelism, totalmem } from 'node:os';

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memory: string;
  node: string;
  redis: string;
  bullmq: string;
  ioredis: string;
}

/** What the results came from: `nproc`, `free -h`, CPU model, node and redis versions. */
export function machineInfo(redisVersion: string): MachineInfo {
  return {
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(safeRead('/proc/cpuinfo'))?.[1]?.trim() ?? 'unknown',
    cores: availableParallelism(),
    memory: freeTotal(),
    node: process.version,
    redis: redisVersion,
    bullmq: packageVersion('bullmq'),
    ioredis: packageVersion('ioredis'),
  };
}

function freeTotal(): string {
  try {
    const line = execFileSync('free', ['-h'], { encoding: 'utf8' })
      .split('\n')
      .find((l) => l.startsWith('Mem:'));
    return line?.split(/\s+/)[1] ?? `${Math.round(totalmem() / 2 ** 30)}Gi`;
  } catch {
    return `${Math.round(totalmem() / 2 ** 30)}Gi`;
  }
}

function packageVersion(name: string): string {
  try {
    const path = new URL(`../../../node_modules/${name}/package.json`, import.meta.url);
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function safeRead(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}
