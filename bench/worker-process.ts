// A worker process for the scale scenario: `node worker-process.js <system> <redisUrl> <concurrency>`.
// It starts one consumer whose handler holds jobs until the parent says 'go', tells the parent
// 'holding' once `concurrency` jobs wait at the gate, and closes on 'stop'.
import { deferred } from './support/stats.js';
import { createSystem } from './systems/index.js';
import type { SystemName } from './systems/system.js';

const [systemName, redisUrl, concurrencyArg] = process.argv.slice(2);
const concurrency = Number(concurrencyArg);
const send = (message: unknown) => process.send!(message);

const gate = deferred();
let open = false;
let held = 0;

const consumer = await createSystem(systemName as SystemName, redisUrl!).createConsumer({
  concurrency,
  handler: async () => {
    if (open) return;
    if (++held === concurrency) send({ type: 'holding' });
    await gate.promise;
  },
  onCompleted: () => undefined,
});

process.on('message', (message: { type: string }) => {
  if (message.type === 'go') {
    open = true;
    gate.resolve();
  } else if (message.type === 'stop') {
    void consumer.close().then(() => process.exit(0));
  }
});
send({ type: 'ready' });
