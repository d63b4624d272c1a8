import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { CompiledProcesses, NodeProcess } from '../support/node-processes.js';
import { freePort, RedisServer } from '../support/redis-server.js';
import { waitFor } from '../support/sample-app.js';

/**
 * After app.close() the library leaves nothing that holds the process open: a script, a test or an app
 * without shutdown hooks ends by itself. Each case runs a real process (test/support/processes/close-app.ts).
 */
describe('A process exits by itself after app.close() (real processes)', () => {
  let compiled: CompiledProcesses | undefined;
  let node: RedisServer | undefined;

  beforeAll(async () => {
    compiled = await CompiledProcesses.compile();
    // A one-node Cluster: every slot on one node, which announces 127.0.0.1 (alone, it knows no address).
    node = await RedisServer.startClusterNode([
      '--cluster-config-file',
      'nodes.conf',
      '--cluster-announce-ip',
      '127.0.0.1',
    ]);
    const admin = new Redis(node.url);
    try {
      await admin.call('CLUSTER', 'ADDSLOTSRANGE', '0', '16383');
      await waitFor(
        async () => (((await admin.call('CLUSTER', 'INFO')) as string).includes('cluster_state:ok') ? true : undefined),
        10_000,
      );
    } finally {
      admin.disconnect();
    }
  }, 60_000);

  afterAll(async () => {
    await node?.dispose();
  });

  /** Starts close-app with `env`, waits for its CLOSED, and returns how it ended within 5 s after. */
  async function runUntilExit(env: Record<string, string>): Promise<unknown> {
    const { process: app } = await NodeProcess.start('close-app', compiled!.entry('close-app'), {
      KEY_PREFIX: `{ae-close-${randomUUID()}}`,
      ...env,
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      await waitFor(async () => (app.tail().includes('CLOSED') || !app.running ? true : undefined), 15_000);
      expect(app.tail()).toContain('CLOSED');
      return await Promise.race([
        app.waitForExit(),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`still running 5 s after CLOSED:\n${app.tail()}`), 5_000);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      app.kill('SIGKILL');
    }
  }

  // ioredis re-arms a Cluster's slotsRefreshInterval timer when a refresh under way at quit() ends, and
  // then every period for ever; the store's Cluster connections refresh on a timer of the library's.
  it('a Cluster store closed during a slot refresh: exit code 0 within 5 s of app.close()', async () => {
    const exited = await runUntilExit({
      REDIS_CLUSTER_NODES: `127.0.0.1:${node!.port}`,
      PAUSE_NODE: node!.url,
      SLOTS_REFRESH_MS: '100',
    });
    expect(exited).toEqual({ code: 0, signal: null });
  }, 60_000);

  // The worker's unregistration fails at once; its 30 s shutdown bound (shutdownTimeoutMs) stayed armed.
  it('a worker whose Redis is unreachable: exit code 0 within 5 s of app.close()', async () => {
    const exited = await runUntilExit({ REDIS_URL: `redis://127.0.0.1:${await freePort()}` });
    expect(exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
