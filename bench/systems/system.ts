/** The job both systems carry: a JSON object of exactly 200 bytes. */
export type BenchPayload = { data: string };

export function payloadOfBytes(bytes: number): BenchPayload {
  const payload = { data: '' };
  payload.data = 'x'.repeat(bytes - JSON.stringify(payload).length);
  return payload;
}

export type BenchHandler = (payload: BenchPayload) => void | Promise<void>;

export interface Producer {
  submit(payload: BenchPayload): Promise<void>;
  close(): Promise<void>;
}

export interface Consumer {
  close(): Promise<void>;
}

export interface ConsumerOptions {
  concurrency: number;
  handler: BenchHandler;
  /** Called once per job, after its completion was written to Redis. */
  onCompleted: () => void;
}

/** One queue implementation, driven the same way by every scenario. */
export interface QueueSystem {
  readonly name: SystemName;
  createProducer(): Promise<Producer>;
  createConsumer(options: ConsumerOptions): Promise<Consumer>;
  /** The Redis key holding completed jobs, for counting them from outside (zset). */
  readonly completedKey: string;
}

export type SystemName = 'async-endpoints' | 'bullmq';
