import { AsyncEndpointsSystem } from './async-endpoints.js';
import { BullMqSystem } from './bullmq.js';
import type { QueueSystem, SystemName } from './system.js';

export function createSystem(name: SystemName, redisUrl: string): QueueSystem {
  switch (name) {
    case 'async-endpoints':
      return new AsyncEndpointsSystem(redisUrl);
    case 'bullmq':
      return new BullMqSystem(redisUrl);
  }
}
