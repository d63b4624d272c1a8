import { Socket } from 'node:net';
import { Redis } from 'ioredis';

/** What one `INFO everything` tells about the server, for deltas around a measured phase. */
export interface RedisSnapshot {
  usedMemory: number;
  totalCommands: number;
  /** CPU time the server used so far (used_cpu_user + used_cpu_sys), in seconds. */
  cpuSeconds: number;
  /** Calls per command name (cmdstat_*), script-internal calls included. */
  commandCalls: Record<string, number>;
}

/**
 * The benchmark's own connection to the shared redis-server: flushes between rounds, reads INFO
 * before and after a phase, counts completed jobs. Its own commands are left out of every delta.
 */
export class RedisProbe {
  private readonly client: Redis;

  constructor(readonly url: string) {
    this.client = new Redis(url, { lazyConnect: true });
  }

  async connect(): Promise<void> {
    await this.client.connect();
    redisWrites.exclude(this.client);
  }

  /** Drops every key of both systems, so that each round starts from an empty server. */
  async flush(): Promise<void> {
    await this.client.flushall();
  }

  async snapshot(): Promise<RedisSnapshot> {
    const info = await this.client.info('everything');
    const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? NaN);
    const commandCalls: Record<string, number> = {};
    for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) commandCalls[match[1]!] = Number(match[2]);
    return {
      usedMemory: field('used_memory'),
      totalCommands: field('total_commands_processed'),
      cpuSeconds: field('used_cpu_user') + field('used_cpu_sys'),
      commandCalls,
    };
  }

  async zcard(key: string): Promise<number> {
    return this.client.zcard(key);
  }

  async serverVersion(): Promise<string> {
    return /^redis_version:(\S+)/m.exec(await this.client.info('server'))?.[1] ?? 'unknown';
  }

  async close(): Promise<void> {
    await this.client.quit();
  }
}

/** Commands run between two snapshots, the probe's own INFO calls left out. */
export function commandsBetween(
  before: RedisSnapshot,
  after: RedisSnapshot,
): { total: number; byCommand: Record<string, number> } {
  const byCommand: Record<string, number> = {};
  let total = 0;
  for (const [name, calls] of Object.entries(after.commandCalls)) {
    if (name === 'info') continue;
    const delta = calls - (before.commandCalls[name] ?? 0);
    if (delta > 0) {
      byCommand[name] = delta;
      total += delta;
    }
  }
  return { total, byCommand };
}

/**
 * Counts writes to Redis sockets of this process: one per request the client sends (a command, a
 * script call, or a whole pipeline/MULTI, which ioredis writes in one piece; the writes made while a
 * socket is corked go out in one writev on uncork, and count once), so the count is the number of
 * round trips the client starts. Sockets of the probe are left out.
 */
class RedisWriteCounter {
  private port = -1;
  private readonly excluded = new WeakSet<Socket>();
  private installed = false;
  count = 0;

  install(port: number): void {
    this.port = port;
    if (this.installed) return;
    this.installed = true;
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const counter = this;
    const write = Socket.prototype.write;
    const uncork = Socket.prototype.uncork;
    const corkedWrites = new WeakSet<Socket>();
    Socket.prototype.write = function (this: Socket, ...args: unknown[]) {
      if (this.remotePort === counter.port && !counter.excluded.has(this)) {
        if (this.writableCorked > 0) corkedWrites.add(this);
        else counter.count++;
      }
      return (write as (...a: unknown[]) => boolean).apply(this, args);
    } as typeof Socket.prototype.write;
    Socket.prototype.uncork = function (this: Socket) {
      uncork.call(this);
      if (this.writableCorked === 0 && corkedWrites.delete(this)) counter.count++;
    };
  }

  exclude(client: Redis): void {
    const stream = (client as unknown as { stream?: Socket }).stream;
    if (stream) this.excluded.add(stream);
  }

  reset(): void {
    this.count = 0;
  }
}

export const redisWrites = new RedisWriteCounter();
