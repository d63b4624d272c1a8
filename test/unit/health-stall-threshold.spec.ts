import { readFileSync } from 'node:fs';
import { stallThresholdMs } from '../../lib/health/async-endpoints.health.js';
import { COMMAND_TIMEOUT_MS } from '../../lib/store/redis/redis-connections.js';

const POLLS_MS = [1, 50, 100, 500, 1000, 1666, 1667, 2000, 5000, 60_000];

describe('health stall threshold', () => {
  it('stays above the longest legitimate gap between loop rounds: one poll interval plus one store call', () => {
    for (const pollMs of POLLS_MS) expect(stallThresholdMs(pollMs)).toBeGreaterThan(pollMs + COMMAND_TIMEOUT_MS);
  });

  it('is the formula docs/configuration.md gives for worker.pollingIntervalMs', () => {
    const docs = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    const formula = /health stall threshold: `max\((\d+) s, (\d+) × pollingIntervalMs\)`/.exec(docs);
    expect(formula).not.toBeNull();
    const [floorSeconds, factor] = [Number(formula![1]), Number(formula![2])];
    for (const pollMs of POLLS_MS)
      expect(stallThresholdMs(pollMs)).toBe(Math.max(floorSeconds * 1000, factor * pollMs));
  });
});
