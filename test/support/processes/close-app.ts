// A process of test/reliability/exit-after-close.spec.ts, run by plain `node` after
// test/support/node-processes.ts compiled it. It starts an app with a worker whose store is the Redis
// Cluster of `REDIS_CLUSTER_NODES` (its slot map refreshed every `SLOTS_REFRESH_MS`) or the Redis of
// `REDIS_URL`, closes it, prints `CLOSED`, and then does nothing: the process ends by itself only if the
// library left nothing running behind it.
// With `PAUSE_NODE`, the store must reach Redis at startup, and the app is closed while a slot refresh
// is under way: a `CLIENT PAUSE` on that node holds the refresh's CLUSTER SLOTS until after app.close()
// began. Without it, Redis may be unreachable: the app starts anyway, and its worker cannot unregister.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { Redis } from 'ioredis';
import { AsyncEndpointsModule } from '../../../lib/index.js';

const refreshMs = Number(process.env.SLOTS_REFRESH_MS ?? 1000);
const clusterNodes = process.env.REDIS_CLUSTER_NODES;
const pauseNode = process.env.PAUSE_NODE;
const keyPrefix = process.env.KEY_PREFIX ?? 'close-app';

@Module({
  imports: [
    ScheduleModule.forRoot(),
    AsyncEndpointsModule.forRoot({
      store: clusterNodes
        ? {
            type: 'redis',
            cluster: { nodes: clusterNodes.split(','), options: { slotsRefreshInterval: refreshMs } },
            keyPrefix,
          }
        : { type: 'redis', url: process.env.REDIS_URL, keyPrefix },
      // A short drain: the store closes while the pause still holds the refresh's CLUSTER SLOTS.
      worker: { enabled: true, pollingIntervalMs: 100, shutdownTimeoutMs: pauseNode ? 50 : 30_000 },
      // With a pause, a store that never reached Redis would prove nothing: the app does not start then.
      failFastOnStoreUnavailable: pauseNode !== undefined,
    }),
  ],
})
class CloseAppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(CloseAppModule, { logger: ['error', 'warn'] });
  process.stdout.write('READY {}\n');
  let pauser: Redis | undefined;
  if (pauseNode) {
    pauser = new Redis(pauseNode);
    await pauser.call('CLIENT', 'PAUSE', String(6 * refreshMs), 'ALL');
    // Two refresh periods: the refresh timer has fired, and its CLUSTER SLOTS waits for the pause to end.
    await new Promise((resolve) => setTimeout(resolve, 2 * refreshMs));
  }
  await app.close();
  pauser?.disconnect();
  process.stdout.write('CLOSED\n');
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
