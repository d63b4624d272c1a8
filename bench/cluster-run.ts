// `npm run bench -- --cluster [--quick] [--rounds=N]`: the throughput scenario of nestjs-async-endpoints
// on one redis-server and on a 3-master Redis Cluster (no replicas) that it starts, alternating, every
// round on emptied nodes, under each CPU placement the machine allows (bench/support/cpu-placement.ts:
// `shared`, and `split` with the app on CPU 0 and Redis on CPU 1). Prints jobs/s side by side
// and each master's share of the commands, judges the targets per placement (cluster >= 0.8x single
// node, as the median of the rounds' paired ratios; each master within 0.2 of a third) and writes
// bench/results/cluster.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { RedisCluster } from '../test/support/redis-cluster.js';
import { RedisServer } from '../test/support/redis-server.js';
import { clusterRound, masterPorts, type ClusterConfig, type ClusterRound } from './scenarios/cluster.js';
import { place, placements, type Placement } from './support/cpu-placement.js';
import { median, round } from './support/stats.js';
import { AsyncEndpointsSystem } from './systems/async-endpoints.js';
import type { BenchPayload } from './systems/system.js';

const MASTERS = 3;
/** One redis-server with 1 partition (the default) and with 12 (the Cluster's default), and the Cluster. */
type Target = 'single' | 'single-12' | 'cluster';
const TARGETS: Target[] = ['single', 'single-12', 'cluster'];

export async function runClusterBench(options: { quick: boolean; rounds: number; payload: BenchPayload }) {
  const config: ClusterConfig = {
    jobs: options.quick ? 4000 : 20_000,
    inFlight: 100,
    concurrency: 16,
    payload: options.payload,
  };
  const started = Date.now();
  const single = await RedisServer.start();
  const cluster = await RedisCluster.start(MASTERS, { replicas: 0 });
  const redisPids = [single.pid!, ...cluster.pids];
  const log = (line: string) => console.log(line);
  const runs = placements();
  const rounds = new Map<Placement, Record<Target, ClusterRound[]>>(
    runs.map((placement) => [placement, { single: [], 'single-12': [], cluster: [] }]),
  );
  try {
    const masters = await masterPorts(cluster);
    const targets = {
      single: { system: new AsyncEndpointsSystem(single.url), nodes: [single.port] },
      // The cluster's partitioning on one node: tells the cost of the partitions from that of the Cluster.
      'single-12': {
        system: new AsyncEndpointsSystem(single.url, { type: 'redis', url: single.url, partitions: 12 }),
        nodes: [single.port],
      },
      // Default partitions on a Cluster: 12, so 4 per master.
      cluster: {
        system: new AsyncEndpointsSystem('', { type: 'redis', cluster: { nodes: cluster.nodes } }),
        nodes: masters,
      },
    };
    log(
      `Redis Cluster benchmark: ${MASTERS} masters vs one redis-server, ${config.jobs} jobs, ${options.rounds} round(s), CPU placements: ${runs.join(', ')}`,
    );
    // One unmeasured round each, so that neither meets a cold JIT.
    for (const target of Object.values(targets))
      await clusterRound(target.system, target.nodes, { ...config, jobs: 2000 });
    for (let r = 0; r < options.rounds; r++) {
      for (const placement of r % 2 === 0 ? runs : [...runs].reverse()) {
        place(placement, redisPids);
        for (const name of r % 2 === 0 ? TARGETS : [...TARGETS].reverse()) {
          const result = await clusterRound(targets[name].system, targets[name].nodes, config);
          rounds.get(placement)![name].push(result);
          const shares = Object.values(result.commandShares).map((share) => round(share, 3));
          log(
            `r${r + 1} ${placement} ${name}: submit ${Math.round(result.submitPerSecond)}/s, process ${Math.round(result.processPerSecond)}/s, command shares ${shares.join(' / ')}`,
          );
        }
      }
    }
  } finally {
    await cluster.stop();
    await single.dispose();
    place('shared', []);
  }
  const byPlacement = Object.fromEntries(runs.map((placement) => [placement, summary(rounds.get(placement)!)]));
  const results = {
    generatedAt: new Date().toISOString(),
    config: { ...config, payload: undefined, rounds: options.rounds, masters: MASTERS, partitions: 12 },
    loadAverage: loadavg().map((load) => round(load, 2)),
    placements: byPlacement,
    durationSeconds: Math.round((Date.now() - started) / 1000),
  };
  for (const [placement, { single, single12, cluster, targets }] of Object.entries(byPlacement)) {
    log(`\n${placement}: median single: submit ${single.submitPerSecond}/s, process ${single.processPerSecond}/s`);
    log(
      `${placement}: median single, 12 partitions: submit ${single12.submitPerSecond}/s, process ${single12.processPerSecond}/s`,
    );
    log(`${placement}: median cluster: submit ${cluster.submitPerSecond}/s, process ${cluster.processPerSecond}/s`);
    for (const target of targets)
      log(`${target.met ? 'MET   ' : 'MISSED'} ${placement}: ${target.target}: ${target.value}`);
  }
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('../../bench/results/cluster.json', import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nWrote bench/results/cluster.json (${results.durationSeconds} s)`);
}

/** One placement's medians, the Cluster's ratios to the single node and the targets judged. */
function summary(rounds: Record<Target, ClusterRound[]>) {
  const med = (name: Target, field: 'submitPerSecond' | 'processPerSecond') =>
    median(rounds[name].map((result) => result[field]));
  const rates = (name: Target) => ({
    submitPerSecond: Math.round(med(name, 'submitPerSecond')),
    processPerSecond: Math.round(med(name, 'processPerSecond')),
  });
  // Paired: the Cluster's rate over the single node's in the same round (run next to each other), then the
  // median over the rounds, as docs/performance.md pairs against BullMQ: this machine's speed drifts by
  // a third within minutes, which a ratio of medians taken over the whole run would absorb.
  const paired = (field: 'submitPerSecond' | 'processPerSecond') =>
    median(rounds.cluster.map((result, r) => result[field] / rounds.single[r]![field]));
  const ratio = { submit: paired('submitPerSecond'), process: paired('processPerSecond') };
  const ratioOfMedians = {
    submit: round(med('cluster', 'submitPerSecond') / med('single', 'submitPerSecond'), 2),
    process: round(med('cluster', 'processPerSecond') / med('single', 'processPerSecond'), 2),
  };
  const shares = rounds.cluster.flatMap((result) => Object.values(result.commandShares));
  const worstShareOff = Math.max(...shares.map((share) => Math.abs(share - 1 / MASTERS)));
  return {
    single: rates('single'),
    single12: rates('single-12'),
    cluster: rates('cluster'),
    ratio: { submit: round(ratio.submit, 2), process: round(ratio.process, 2) },
    ratioOfMedians,
    pairedRatios: rounds.cluster.map((result, r) => ({
      submit: round(result.submitPerSecond / rounds.single[r]!.submitPerSecond, 2),
      process: round(result.processPerSecond / rounds.single[r]!.processPerSecond, 2),
    })),
    commandShares: rounds.cluster.map((result) => Object.values(result.commandShares).map((share) => round(share, 3))),
    targets: [
      {
        target: 'cluster >= 0.8x single node (submit, median of paired rounds)',
        value: round(ratio.submit, 2),
        met: ratio.submit >= 0.8,
      },
      {
        target: 'cluster >= 0.8x single node (process, median of paired rounds)',
        value: round(ratio.process, 2),
        met: ratio.process >= 0.8,
      },
      {
        target: 'each master within 0.2 of a third of the commands (|share - 1/3| <= 0.2 / 3)',
        value: round(worstShareOff, 3),
        met: worstShareOff <= 0.2 / MASTERS,
      },
    ],
  };
}
