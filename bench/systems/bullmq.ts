import { Queue, Worker } from 'bullmq';
import type { Consumer, ConsumerOptions, Producer, QueueSystem } from './system.js';

const QUEUE_NAME = 'bench';

/**
 * BullMQ 6 with the same guarantees as the library's defaults: completed jobs are kept
 * (`removeOnComplete: false`, where the library keeps them for its 24 h retention), and 4 attempts
 * with exponential backoff from 2 s (the library's `defaultMaxRetries: 3`, `retryDelayBaseSeconds: 2`).
 */
export class BullMqSystem implements QueueSystem {
  readonly name = 'bullmq' as const;
  readonly completedKey = `bull:${QUEUE_NAME}:completed`;
  private readonly connection: { host: string; port: number };

  constructor(redisUrl: string) {
    const url = new URL(redisUrl);
    this.connection = { host: url.hostname, port: Number(url.port) };
  }

  async createProducer(): Promise<Producer> {
    const queue = new Queue(QUEUE_NAME, {
      connection: this.connection,
      defaultJobOptions: {
        removeOnComplete: false,
        removeOnFail: false,
        attempts: 4,
        backoff: { type: 'exponential', delay: 2000 },
      },
    });
    await queue.waitUntilReady();
    return {
      submit: async (payload) => {
        await queue.add('noop', payload);
      },
      close: () => queue.close(),
    };
  }

  async createConsumer({ concurrency, handler, onCompleted }: ConsumerOptions): Promise<Consumer> {
    const worker = new Worker(QUEUE_NAME, async (job) => handler(job.data), {
      connection: { ...this.connection, maxRetriesPerRequest: null },
      concurrency,
    });
    worker.on('completed', onCompleted);
    worker.on('error', (error) => console.error(`bullmq worker: ${error.message}`));
    await worker.waitUntilReady();
    return { close: () => worker.close() };
  }
}
