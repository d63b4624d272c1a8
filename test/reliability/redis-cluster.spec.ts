import { randomUUID } from 'node:crypto';
import { Body, Controller, Injectable, Post, type INestApplication } from '@nestjs/common';
import request from 'supertest';
import {
  AsyncEndpoint,
  AsyncHandler,
  JobStore,
  type AsyncContext,
  type AsyncEndpointHandler,
} from '../../lib/index.js';
import { partitionPrefixes } from '../../lib/store/redis/redis-partitions.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { sampleOptions } from '../../sample/app.module.js';
import { startSampleApp, waitFor } from '../support/sample-app.js';
import { startTestApp } from '../support/test-app.js';

/** How often each job ran, by id: a job that runs twice shows 2. */
const runs = new Map<string, number>();
function record(context: AsyncContext): { ran: string } {
  runs.set(context.job.id, (runs.get(context.job.id) ?? 0) + 1);
  return { ran: context.job.name };
}

@AsyncHandler('Resize')
@Injectable()
class ResizeHandler implements AsyncEndpointHandler {
  handle(context: AsyncContext) {
    return record(context);
  }
}

@AsyncHandler('Transcode')
@Injectable()
class TranscodeHandler implements AsyncEndpointHandler {
  handle(context: AsyncContext) {
    return record(context);
  }
}

@AsyncHandler('Report')
@Injectable()
class ReportHandler implements AsyncEndpointHandler {
  handle(context: AsyncContext) {
    return record(context);
  }
}

@Controller()
class JobsController {
  @Post('resize')
  @AsyncEndpoint('Resize')
  resize(@Body() _body: unknown) {}

  @Post('transcode')
  @AsyncEndpoint('Transcode')
  transcode(@Body() _body: unknown) {}

  @Post('report')
  @AsyncEndpoint('Report')
  report(@Body() _body: unknown) {}
}

const ROUTES = ['resize', 'transcode', 'report'];
const PARTITIONS = 12;
/** Short leases and sweeps: a completion lost with a killed master is redone soon. */
const WORKER_OPTIONS = {
  worker: { maximumConcurrency: 16, batchSize: 20, maximumQueueSize: 100_000 },
  jobManager: { jobClaimTimeoutMs: 2000 },
  recovery: { recoveryCheckIntervalSeconds: 1 },
};
const HANDLERS = { controllers: [JobsController], providers: [ResizeHandler, TranscodeHandler, ReportHandler] };

/**
 * One store spread over a real 3-master Redis Cluster (3 replicas), through the HTTP API of a real
 * Nest app: the job keys spread over the masters, every job completes and runs once, and with
 * waitForReplicas no acknowledged job is lost when a master is killed. One cluster for the file; the
 * failover case comes last, as it leaves a master dead.
 */
describe('The Redis store on a Redis Cluster, through the API', () => {
  let cluster: RedisCluster;
  let app: INestApplication | undefined;
  const keyPrefix = `{ae-cluster-${randomUUID()}}`;

  beforeAll(async () => {
    cluster = await RedisCluster.start();
    app = await startTestApp(
      {
        store: {
          type: 'redis',
          cluster: { nodes: cluster.nodes },
          keyPrefix,
          waitForReplicas: { replicas: 1, timeoutMs: 500 },
        },
        ...WORKER_OPTIONS,
      },
      HANDLERS,
    );
  }, 60_000);

  afterAll(async () => {
    await app?.close();
    await cluster?.stop();
  }, 60_000);

  /**
   * Submits `count` jobs over the routes of `to` (the app), `concurrency` at a time; returns the ids
   * answered 202 and the other statuses. With `retryUnavailable`, a 503 is sent again with the same
   * X-Async-Request-Id, as a client does (on a loaded machine a replica may not confirm within
   * waitForReplicas.timeoutMs). `accepted` and `refused`: where the ids answered 202 and the other
   * statuses go as they come (a case may look at them on the way).
   */
  async function submit(
    count: number,
    concurrency: number,
    {
      during,
      retryUnavailable = false,
      accepted = [],
      refused = [],
      to = app!,
    }: {
      during?: () => boolean;
      retryUnavailable?: boolean;
      accepted?: string[];
      refused?: number[];
      to?: INestApplication;
    } = {},
  ) {
    const http = () => request(to.getHttpServer());
    let next = 0;
    let retried = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < count && (during?.() ?? true)) {
          const n = next++;
          const route = ROUTES[n % ROUTES.length]!;
          const requestId = randomUUID();
          let response = await http().post(`/${route}`).set('X-Async-Request-Id', requestId).send({ n });
          for (let tries = 1; retryUnavailable && response.status === 503 && tries < 20; tries++) {
            retried++;
            await sleep(100);
            response = await http().post(`/${route}`).set('X-Async-Request-Id', requestId).send({ n });
          }
          if (response.status === 202) accepted.push(response.body.id as string);
          else refused.push(response.status);
        }
      }),
    );
    if (retried > 0) console.log(`cluster submit: ${retried} 503 answer(s) retried with the same X-Async-Request-Id`);
    return { accepted, refused };
  }

  /**
   * What became of jobs answered 202, read through the job store of `from`, 100 at a time, again every
   * 500 ms for those not Completed yet, until each reads Completed or is gone (null), or `timeoutMs` has
   * passed. `lost`: the ids gone (acknowledged, then lost); `unfinished`: those still neither, with
   * their status (or the read's error).
   */
  async function settle(
    ids: readonly string[],
    timeoutMs: number,
    from = app!,
  ): Promise<{ lost: string[]; unfinished: string[] }> {
    const deadline = Date.now() + timeoutMs;
    const lost: string[] = [];
    let pending = [...ids];
    for (;;) {
      const unfinished: string[] = [];
      const store = from.get(JobStore);
      for (let i = 0; i < pending.length; i += 100) {
        const page = pending.slice(i, i + 100);
        const jobs = await Promise.all(page.map((id) => store.getJob(id).catch((error: Error) => error)));
        jobs.forEach((job, j) => {
          if (job === null) lost.push(page[j]!);
          else if (job instanceof Error || job.status !== 'Completed')
            unfinished.push(`${page[j]}: ${job instanceof Error ? job.message : job.status}`);
        });
      }
      pending = unfinished.map((line) => line.slice(0, line.indexOf(':')));
      if (pending.length === 0 || Date.now() > deadline) return { lost, unfinished };
      await sleep(500);
    }
  }

  /** The job keys of a store on each master, read on each master itself. */
  async function jobKeysPerMaster(prefix = keyPrefix): Promise<string[][]> {
    return Promise.all((await cluster.masters()).map((master) => jobKeysOn(master.port, prefix)));
  }

  async function jobKeysOn(port: number, prefix: string): Promise<string[]> {
    return (await cluster.command(port, ['keys', `{${prefix.slice(1, -1)}:*}:job:*`])) as string[];
  }

  it('spreads 3,000 jobs of three names over the masters (each holds at least 20% of the job keys, and 3 or more of the 12 partitions), and completes each, run exactly once (503s retried with their request id)', async () => {
    const { accepted, refused } = await submit(3000, 32, { retryUnavailable: true });
    expect(refused).toEqual([]);
    expect(new Set(accepted).size).toBe(3000);
    // The handlers' record first (cheap to poll), then what the store says of each job.
    await waitFor(async () => (accepted.every((id) => runs.has(id)) ? true : undefined), 90_000, 200);
    expect(await settle(accepted, 30_000)).toEqual({ lost: [], unfinished: [] });
    expect(accepted.filter((id) => runs.get(id) !== 1)).toEqual([]);

    const perMaster = await jobKeysPerMaster();
    expect(perMaster).toHaveLength(3);
    expect(perMaster.reduce((sum, keys) => sum + keys.length, 0)).toBe(3000);
    for (const keys of perMaster) expect(keys.length).toBeGreaterThanOrEqual(600);
    // The partitions each master's job keys lie in: together all 12, each on one master; with
    // redis-cli's even split of the slots, 4 per master (3 or 5 if a partition's tag falls on the one
    // slot where a partition's range crosses into the next master's).
    const prefixes = partitionPrefixes(keyPrefix, PARTITIONS);
    const partitionsPerMaster = perMaster.map((keys) => [
      ...new Set(keys.map((key) => prefixes.indexOf(key.slice(0, key.indexOf(':job:'))))),
    ]);
    expect(partitionsPerMaster.flat().sort((a, b) => a - b)).toEqual([...prefixes.keys()]);
    for (const partitions of partitionsPerMaster) expect(partitions.length).toBeGreaterThanOrEqual(3);
  }, 150_000);

  it('runs a job of the sample started with REDIS_CLUSTER_NODES and REDIS_WAIT_REPLICAS', async () => {
    const sample = await startSampleApp(
      sampleOptions({ REDIS_CLUSTER_NODES: cluster.nodes.join(','), REDIS_WAIT_REPLICAS: '1' }),
    );
    try {
      const server = sample.getHttpServer();
      const { body } = await request(server)
        .post('/api/process')
        .send({ data: 'on a cluster', delayMs: 0 })
        .expect(202);
      await waitFor(async () =>
        (await request(server).get(`/jobs/${body.id}`)).body.status === 'Completed' ? true : undefined,
      );
    } finally {
      await sample.close();
    }
  });

  it('with waitForReplicas 1, completes every job answered 202 while a master is killed and its replica promoted: lost 0', async () => {
    const [victim] = await cluster.masters();
    let submitting = true;
    const accepted: string[] = [];
    const submitted = submit(Number.MAX_SAFE_INTEGER, 8, { during: () => submitting, accepted });
    // Submissions flow, then a master crashes under them.
    const before = runs.size;
    await waitFor(async () => (runs.size >= before + 300 ? true : undefined), 30_000);
    await cluster.killMaster(victim!);
    // After the promotion, jobs are submitted and run again.
    const promotedAt = runs.size;
    const acceptedBeforePromotion = accepted.length;
    await waitFor(async () => (runs.size >= promotedAt + 300 ? true : undefined), 30_000);
    submitting = false;
    await submitted;

    expect(await settle(accepted, 60_000)).toEqual({ lost: [], unfinished: [] });
    // Jobs were answered 202 after the promotion too. (Counting them against the 600 runs failed now
    // and then: a submit answered 503 during the failover may still have been stored and run.)
    expect(accepted.length).toBeGreaterThan(acceptedBeforePromotion);
  }, 150_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
