// `npm run bench -- --cluster` compares one redis-server with a 3-master Redis Cluster instead (cluster-run.ts).
// `npm run bench [-- --quick] [-- --only=throughput,latency,http,scale,claim,memory] [-- --rounds=N] [-- --system=NAME]`
// Starts its own redis-server, runs nestjs-async-endpoints and BullMQ side by side on it (alternating,
// every round from an empty Redis), prints a table and writes bench/results/latest.json.
// `--system=async-endpoints` (or bullmq) runs one system alone, for profiling with `node --cpu-prof`;
// such a run writes bench/results/<system>.json instead and judges no target.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { RedisServer } from '../test/support/redis-server.js';
import { runClusterBench } from './cluster-run.js';
import { claimCostRound, type ClaimCostRow } from './scenarios/claim-cost.js';
import { memoryCostRound, type MemoryCostRow } from './scenarios/memory-store-cost.js';
import { httpRound, type HttpRound, type HttpStore } from './scenarios/http.js';
import { latencyRound, type LatencyRound } from './scenarios/latency.js';
import { scaleRound } from './scenarios/scale.js';
import { throughputRound, type ThroughputRound } from './scenarios/throughput.js';
import { machineInfo } from './support/machine.js';
import { RedisProbe, redisWrites } from './support/redis-probe.js';
import { median, round } from './support/stats.js';
import { createSystem } from './systems/index.js';
import { payloadOfBytes, type QueueSystem, type SystemName } from './systems/system.js';

type Scenario = 'throughput' | 'latency' | 'http' | 'scale' | 'claim' | 'memory';
const SCENARIOS: Scenario[] = ['throughput', 'latency', 'http', 'scale', 'claim', 'memory'];
const ALL_SYSTEMS: SystemName[] = ['async-endpoints', 'bullmq'];

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = (args
  .find((a) => a.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',') ?? SCENARIOS) as Scenario[];
const rounds = Number(args.find((a) => a.startsWith('--rounds='))?.slice('--rounds='.length) ?? 3);
const onlySystem = args.find((a) => a.startsWith('--system='))?.slice('--system='.length) as SystemName | undefined;
const SYSTEMS = onlySystem ? ALL_SYSTEMS.filter((name) => name === onlySystem) : ALL_SYSTEMS;
if (SYSTEMS.length === 0) throw new Error(`--system must be one of ${ALL_SYSTEMS.join(', ')}`);
const payload = payloadOfBytes(200);

const config = {
  rounds,
  payloadBytes: JSON.stringify(payload).length,
  throughput: { jobs: quick ? 4000 : 20_000, inFlight: 100, concurrency: 16, payload },
  /** One unmeasured round per system first, so that neither meets a cold JIT. */
  warmup: { jobs: 2000, inFlight: 100, concurrency: 16, payload },
  latency: { jobs: quick ? 100 : 300, warmup: 20, idleMs: 5, payload },
  http: {
    durationSeconds: quick ? 3 : 10,
    slices: quick ? 1 : 5,
    warmupSeconds: quick ? 1 : 2,
    connections: 50,
    payload,
  },
  scale: { jobs: quick ? 4000 : 20_000, inFlight: 100, concurrency: 16, payload },
  /** Redis time of one claim script by payload size (1 KB, 100 KB, 1 MB): our store alone. */
  claim: { payloadBytes: [1_000, 100_000, 1_000_000], claims: quick ? 10 : 30 },
  /** The memory store's CPU per createJob and completeJob by payload (and result) size: our store alone. */
  memory: { payloadBytes: [1_000, 100_000, 1_000_000], jobs: quick ? 20 : 100 },
};

/** Round r runs the systems in this order: who goes first alternates. */
function order<T>(items: readonly T[], r: number): T[] {
  return r % 2 === 0 ? [...items] : [...items].reverse();
}

const log = (line: string) => console.log(line);

async function main(): Promise<void> {
  if (args.includes('--cluster')) return runClusterBench({ quick, rounds, payload });
  const started = Date.now();
  const redis = await RedisServer.start();
  const probe = new RedisProbe(redis.url);
  redisWrites.install(redis.port);
  await probe.connect();
  const systems = Object.fromEntries(SYSTEMS.map((name) => [name, createSystem(name, redis.url)])) as Record<
    SystemName,
    QueueSystem
  >;
  const results: Record<string, unknown> = {
    generatedAt: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    machine: machineInfo(await probe.serverVersion()),
    config: JSON.parse(
      JSON.stringify(config, (key, value: unknown) => (key === 'payload' ? undefined : value)),
    ) as unknown,
    loadAverageAtStart: loadavg().map((load) => round(load, 2)),
  };
  log(
    `nestjs-async-endpoints vs BullMQ ${(results.machine as { bullmq: string }).bullmq}, ${rounds} round(s)${quick ? ', quick' : ''}, redis-server ${redis.url}`,
  );
  try {
    if (only.some((scenario) => scenario !== 'http' && scenario !== 'claim' && scenario !== 'memory')) {
      for (const name of SYSTEMS) await throughputRound(systems[name], probe, config.warmup);
    }
    if (only.includes('throughput')) results.throughput = await runThroughput(systems, probe);
    if (only.includes('latency')) results.latency = await runLatency(systems, probe);
    if (only.includes('scale')) results.scale = await runScale(systems, probe);
    if (only.includes('http')) results.http = await runHttp(probe);
    if (only.includes('claim') && SYSTEMS.includes('async-endpoints'))
      results.claim = await runClaimCost(redis.url, probe);
    if (only.includes('memory') && SYSTEMS.includes('async-endpoints')) results.memory = await runMemoryCost();
  } finally {
    await probe.close();
    await redis.dispose();
  }
  results.durationSeconds = Math.round((Date.now() - started) / 1000);
  results.loadAverageAtEnd = loadavg().map((load) => round(load, 2));
  results.targets = onlySystem ? [] : targets(results);
  if (!onlySystem) printTable(results);
  mkdirSync(new URL('../../bench/results/', import.meta.url), { recursive: true });
  const name = onlySystem ? `${onlySystem}.json` : 'latest.json';
  writeFileSync(new URL(`../../bench/results/${name}`, import.meta.url), `${JSON.stringify(results, null, 2)}\n`);
  log(`\nWrote bench/results/${name} (${results.durationSeconds} s)`);
}

async function runThroughput(systems: Record<SystemName, QueueSystem>, probe: RedisProbe) {
  const perSystem: Record<SystemName, ThroughputRound[]> = { 'async-endpoints': [], bullmq: [] };
  for (let r = 0; r < rounds; r++) {
    for (const name of order(SYSTEMS, r)) {
      const result = await throughputRound(systems[name], probe, config.throughput);
      perSystem[name].push(result);
      log(
        `throughput r${r + 1} ${name}: submit ${Math.round(result.submitPerSecond)}/s, process ${Math.round(result.processPerSecond)}/s, end to end ${Math.round(result.endToEndPerSecond)}/s; ` +
          `${round(result.cost.commandsPerJob, 1)} commands, ${round(result.cost.roundTripsPerJob)} round trips, ${Math.round(result.cost.memoryBytesPerJob)} B, ` +
          `${Math.round(result.cost.nodeCpuMicrosPerJob)} µs Node CPU, ${Math.round(result.cost.redisCpuMicrosPerJob)} µs Redis CPU per job`,
      );
    }
  }
  const medians = mapSystems((name) => {
    const list = perSystem[name];
    const m = (pick: (round: ThroughputRound) => number) => median(list.map(pick));
    if (list.length === 0) return undefined;
    return {
      submitPerSecond: m((x) => x.submitPerSecond),
      processPerSecond: m((x) => x.processPerSecond),
      endToEndPerSecond: m((x) => x.endToEndPerSecond),
      commandsPerJob: m((x) => x.cost.commandsPerJob),
      roundTripsPerJob: m((x) => x.cost.roundTripsPerJob),
      submitRoundTripsPerJob: m((x) => x.cost.submitRoundTripsPerJob),
      processRoundTripsPerJob: m((x) => x.cost.processRoundTripsPerJob),
      memoryBytesPerJob: m((x) => x.cost.memoryBytesPerJob),
      nodeCpuMicrosPerJob: m((x) => x.cost.nodeCpuMicrosPerJob),
      redisCpuMicrosPerJob: m((x) => x.cost.redisCpuMicrosPerJob),
      submitNodeCpuMicrosPerJob: m((x) => x.cost.submitNodeCpuMicrosPerJob),
      submitRedisCpuMicrosPerJob: m((x) => x.cost.submitRedisCpuMicrosPerJob),
      commandsByName: list[list.length - 1]!.cost.commandsByName,
      /** How much the rounds disagree: (max - min) / median of the processing rate. */
      processSpread:
        (Math.max(...list.map((x) => x.processPerSecond)) - Math.min(...list.map((x) => x.processPerSecond))) /
        m((x) => x.processPerSecond),
    };
  });
  return { rounds: perSystem, medians, pairedRatios: pairedThroughputRatios(perSystem) };
}

/**
 * The median over rounds of each round's ratio async-endpoints / BullMQ. The two systems of a round
 * run back to back, so a round's ratio is less sensitive to load that drifts during the run (other
 * processes on the machine) than the ratio of the two medians; the targets are judged on it.
 */
function pairedRatios<T>(perSystem: Record<SystemName, T[]>, pick: (result: T) => number): number {
  const ours = perSystem['async-endpoints'];
  const bull = perSystem.bullmq;
  return median(ours.map((result, r) => pick(result) / pick(bull[r]!)));
}

function pairedThroughputRatios(perSystem: Record<SystemName, ThroughputRound[]>) {
  if (SYSTEMS.length < 2) return undefined;
  return {
    submitPerSecond: pairedRatios(perSystem, (x) => x.submitPerSecond),
    processPerSecond: pairedRatios(perSystem, (x) => x.processPerSecond),
    endToEndPerSecond: pairedRatios(perSystem, (x) => x.endToEndPerSecond),
    memoryBytesPerJob: pairedRatios(perSystem, (x) => x.cost.memoryBytesPerJob),
    nodeCpuMicrosPerJob: pairedRatios(perSystem, (x) => x.cost.nodeCpuMicrosPerJob),
    redisCpuMicrosPerJob: pairedRatios(perSystem, (x) => x.cost.redisCpuMicrosPerJob),
  };
}

async function runLatency(systems: Record<SystemName, QueueSystem>, probe: RedisProbe) {
  const perSystem: Record<SystemName, LatencyRound[]> = { 'async-endpoints': [], bullmq: [] };
  for (let r = 0; r < rounds; r++) {
    // Both systems in one round, job by job in turn (see latencyRound).
    const results = await latencyRound(
      order(SYSTEMS, r).map((name) => systems[name]),
      probe,
      config.latency,
    );
    for (const name of SYSTEMS) {
      const result = results.get(systems[name])!;
      perSystem[name].push(result);
      log(`pickup r${r + 1} ${name}: p50 ${round(result.p50Ms, 3)} ms, p99 ${round(result.p99Ms, 3)} ms`);
    }
  }
  const medians = mapSystems((name) => ({
    p50Ms: median(perSystem[name].map((x) => x.p50Ms)),
    p99Ms: median(perSystem[name].map((x) => x.p99Ms)),
  }));
  const paired =
    SYSTEMS.length < 2
      ? undefined
      : { p50Ms: pairedRatios(perSystem, (x) => x.p50Ms), p99Ms: pairedRatios(perSystem, (x) => x.p99Ms) };
  return { rounds: perSystem, medians, pairedRatios: paired };
}

async function runScale(systems: Record<SystemName, QueueSystem>, probe: RedisProbe) {
  const perSystem: Record<SystemName, { oneProcess: number[]; twoProcesses: number[] }> = {
    'async-endpoints': { oneProcess: [], twoProcesses: [] },
    bullmq: { oneProcess: [], twoProcesses: [] },
  };
  for (let r = 0; r < rounds; r++) {
    for (const name of order(SYSTEMS, r)) {
      for (const processes of order([1, 2], r)) {
        const rate = await scaleRound(systems[name], probe, processes, config.scale);
        (processes === 1 ? perSystem[name].oneProcess : perSystem[name].twoProcesses).push(rate);
        log(`scale r${r + 1} ${name}, ${processes} worker process(es): ${Math.round(rate)} jobs/s`);
      }
    }
  }
  const medians = mapSystems((name) => {
    const one = median(perSystem[name].oneProcess);
    const two = median(perSystem[name].twoProcesses);
    return { oneProcessPerSecond: one, twoProcessesPerSecond: two, speedup: two / one };
  });
  return { rounds: perSystem, medians };
}

async function runHttp(probe: RedisProbe) {
  const perStore: Record<HttpStore, HttpRound[]> = { memory: [], redis: [] };
  for (let r = 0; r < rounds; r++) {
    for (const store of order(['memory', 'redis'] as const, r)) {
      const result = await httpRound(store, probe, config.http, r % 2 === 0);
      perStore[store].push(result);
      log(
        `http r${r + 1} ${store}: 202 submits ${Math.round(result.submitPerSecond)}/s (${Math.round(result.submitCpuMicrosPerRequest)} µs CPU each), ` +
          `plain route ${Math.round(result.plainPerSecond)}/s (${Math.round(result.plainCpuMicrosPerRequest)} µs CPU each)`,
      );
    }
  }
  const medians = Object.fromEntries(
    (['memory', 'redis'] as const).map((store) => {
      const submit = median(perStore[store].map((x) => x.submitPerSecond));
      const plain = median(perStore[store].map((x) => x.plainPerSecond));
      return [
        store,
        {
          submitPerSecond: submit,
          plainPerSecond: plain,
          ratio: median(perStore[store].map((x) => x.submitPerSecond / x.plainPerSecond)),
          submitLatencyP99Ms: median(perStore[store].map((x) => x.submitLatencyP99Ms)),
          plainLatencyP99Ms: median(perStore[store].map((x) => x.plainLatencyP99Ms)),
          submitCpuMicrosPerRequest: median(perStore[store].map((x) => x.submitCpuMicrosPerRequest)),
          plainCpuMicrosPerRequest: median(perStore[store].map((x) => x.plainCpuMicrosPerRequest)),
        },
      ];
    }),
  );
  return { rounds: perStore, medians };
}

/** Per payload size, the median over rounds of the claims' median and max Redis time. */
async function runClaimCost(url: string, probe: RedisProbe) {
  const perRound: ClaimCostRow[][] = [];
  for (let r = 0; r < rounds; r++) {
    const rows = await claimCostRound(url, probe, config.claim);
    perRound.push(rows);
    log(
      `claim cost r${r + 1}: ${rows.map((row) => `${row.payloadBytes} B payload ${row.medianMicros} µs (max ${row.maxMicros})`).join(', ')}`,
    );
  }
  const medians = config.claim.payloadBytes.map((payloadBytes, i) => ({
    payloadBytes,
    medianMicros: median(perRound.map((rows) => rows[i]!.medianMicros)),
    maxMicros: median(perRound.map((rows) => rows[i]!.maxMicros)),
  }));
  return { rounds: perRound, medians };
}

/** Per payload size, the median over rounds of the memory store's median createJob and completeJob time. */
async function runMemoryCost() {
  const perRound: MemoryCostRow[][] = [];
  for (let r = 0; r < rounds; r++) {
    const rows = await memoryCostRound(config.memory);
    perRound.push(rows);
    log(
      `memory store r${r + 1}: ${rows.map((row) => `${row.payloadBytes} B create ${row.createMicros} µs, complete ${row.completeMicros} µs`).join('; ')}`,
    );
  }
  const medians = config.memory.payloadBytes.map((payloadBytes, i) => ({
    payloadBytes,
    createMicros: median(perRound.map((rows) => rows[i]!.createMicros)),
    completeMicros: median(perRound.map((rows) => rows[i]!.completeMicros)),
  }));
  return { rounds: perRound, medians };
}

function mapSystems<T>(build: (name: SystemName) => T | undefined): Record<SystemName, T> {
  return Object.fromEntries(SYSTEMS.map((name) => [name, build(name)])) as Record<SystemName, T>;
}

interface Target {
  target: string;
  value: number;
  limit: string;
  met: boolean;
}

/** The issue's targets, from the medians of this run. */
function targets(results: Record<string, unknown>): Target[] {
  const list: Target[] = [];
  const t = results.throughput as Awaited<ReturnType<typeof runThroughput>> | undefined;
  if (t) {
    const ours = t.medians['async-endpoints'];
    const ratios = t.pairedRatios!;
    list.push(
      {
        target: 'submit throughput vs BullMQ',
        value: ratios.submitPerSecond,
        limit: '>= 1.0x',
        met: ratios.submitPerSecond >= 1,
      },
      {
        target: 'processing throughput vs BullMQ',
        value: ratios.processPerSecond,
        limit: '>= 1.0x',
        met: ratios.processPerSecond >= 1,
      },
      {
        target: 'Redis memory per completed job vs BullMQ',
        value: ratios.memoryBytesPerJob,
        limit: '<= 1.0x',
        met: ratios.memoryBytesPerJob <= 1,
      },
      {
        target: 'Redis round trips per job (hot path)',
        value: ours.roundTripsPerJob,
        limit: '<= 3',
        met: ours.roundTripsPerJob <= 3,
      },
    );
  }
  const l = results.latency as Awaited<ReturnType<typeof runLatency>> | undefined;
  if (l) {
    const ratios = l.pairedRatios!;
    list.push(
      { target: 'pickup p50 vs BullMQ', value: ratios.p50Ms, limit: '<= 1.0x', met: ratios.p50Ms <= 1 },
      { target: 'pickup p99 vs BullMQ', value: ratios.p99Ms, limit: '<= 1.0x', met: ratios.p99Ms <= 1 },
    );
  }
  const h = results.http as Awaited<ReturnType<typeof runHttp>> | undefined;
  if (h) {
    const memory = h.medians.memory as { ratio: number };
    list.push({
      target: 'HTTP 202 submits vs plain route (memory store)',
      value: memory.ratio,
      limit: '>= 0.7x',
      met: memory.ratio >= 0.7,
    });
  }
  return list.map((x) => ({ ...x, value: round(x.value, 2) }));
}

function printTable(results: Record<string, unknown>): void {
  const rows: string[][] = [['measure (median of rounds)', 'async-endpoints', 'BullMQ', 'ratio', 'paired ratio']];
  const add = (label: string, ours: number, bull: number, digits = 0, paired?: number) =>
    rows.push([
      label,
      format(ours, digits),
      format(bull, digits),
      `${round(ours / bull, 2)}x`,
      paired === undefined ? '' : `${round(paired, 2)}x`,
    ]);
  const t = results.throughput as Awaited<ReturnType<typeof runThroughput>> | undefined;
  if (t) {
    const [o, b] = [t.medians['async-endpoints'], t.medians.bullmq];
    const p = t.pairedRatios!;
    add('submit (jobs/s, 100 in flight)', o.submitPerSecond, b.submitPerSecond, 0, p.submitPerSecond);
    add('processing (jobs/s, concurrency 16)', o.processPerSecond, b.processPerSecond, 0, p.processPerSecond);
    add('end to end (jobs/s)', o.endToEndPerSecond, b.endToEndPerSecond, 0, p.endToEndPerSecond);
    add('Redis commands per job', o.commandsPerJob, b.commandsPerJob, 1);
    add('Redis round trips per job', o.roundTripsPerJob, b.roundTripsPerJob, 2);
    add('  of which submit', o.submitRoundTripsPerJob, b.submitRoundTripsPerJob, 2);
    add('  of which processing', o.processRoundTripsPerJob, b.processRoundTripsPerJob, 2);
    add('Redis memory per completed job (B)', o.memoryBytesPerJob, b.memoryBytesPerJob, 0, p.memoryBytesPerJob);
    add(
      'Node CPU per job, submit + process (µs)',
      o.nodeCpuMicrosPerJob,
      b.nodeCpuMicrosPerJob,
      0,
      p.nodeCpuMicrosPerJob,
    );
    add(
      'Redis CPU per job, submit + process (µs)',
      o.redisCpuMicrosPerJob,
      b.redisCpuMicrosPerJob,
      0,
      p.redisCpuMicrosPerJob,
    );
    add('  Node CPU of the submit alone (µs)', o.submitNodeCpuMicrosPerJob, b.submitNodeCpuMicrosPerJob);
    add('  Redis CPU of the submit alone (µs)', o.submitRedisCpuMicrosPerJob, b.submitRedisCpuMicrosPerJob);
  }
  const l = results.latency as Awaited<ReturnType<typeof runLatency>> | undefined;
  if (l) {
    add('pickup p50 (ms)', l.medians['async-endpoints'].p50Ms, l.medians.bullmq.p50Ms, 3, l.pairedRatios!.p50Ms);
    add('pickup p99 (ms)', l.medians['async-endpoints'].p99Ms, l.medians.bullmq.p99Ms, 3, l.pairedRatios!.p99Ms);
  }
  const s = results.scale as Awaited<ReturnType<typeof runScale>> | undefined;
  if (s) {
    add(
      '1 worker process (jobs/s)',
      s.medians['async-endpoints'].oneProcessPerSecond,
      s.medians.bullmq.oneProcessPerSecond,
    );
    add(
      '2 worker processes (jobs/s)',
      s.medians['async-endpoints'].twoProcessesPerSecond,
      s.medians.bullmq.twoProcessesPerSecond,
    );
    add('  speed-up 2 vs 1', s.medians['async-endpoints'].speedup, s.medians.bullmq.speedup, 2);
  }
  if (rows.length > 1) {
    log('');
    log(markdownTable(rows));
  }
  const h = results.http as Awaited<ReturnType<typeof runHttp>> | undefined;
  if (h) {
    const httpRows = [['HTTP (median)', '202 submit', 'plain route', 'ratio']];
    for (const store of ['memory', 'redis'] as const) {
      const m = h.medians[store] as {
        submitPerSecond: number;
        plainPerSecond: number;
        ratio: number;
        submitCpuMicrosPerRequest: number;
        plainCpuMicrosPerRequest: number;
      };
      httpRows.push([
        `req/s, ${store} store`,
        format(m.submitPerSecond, 0),
        format(m.plainPerSecond, 0),
        `${round(m.ratio, 2)}x`,
      ]);
      httpRows.push([
        `app CPU µs per request, ${store} store`,
        format(m.submitCpuMicrosPerRequest, 0),
        format(m.plainCpuMicrosPerRequest, 0),
        `${round(m.submitCpuMicrosPerRequest / m.plainCpuMicrosPerRequest, 2)}x`,
      ]);
    }
    log('');
    log(markdownTable(httpRows));
  }
  const c = results.claim as Awaited<ReturnType<typeof runClaimCost>> | undefined;
  if (c) {
    const claimRows = [['claim script in Redis (SLOWLOG)', 'median µs', 'max µs']];
    for (const row of c.medians)
      claimRows.push([
        `payload ${format(row.payloadBytes, 0)} B`,
        format(row.medianMicros, 0),
        format(row.maxMicros, 0),
      ]);
    log('');
    log(markdownTable(claimRows));
  }
  const mem = results.memory as Awaited<ReturnType<typeof runMemoryCost>> | undefined;
  if (mem) {
    const memoryRows = [['memory store, in process', 'createJob µs', 'completeJob µs']];
    for (const row of mem.medians)
      memoryRows.push([
        `payload ${format(row.payloadBytes, 0)} B`,
        format(row.createMicros, 0),
        format(row.completeMicros, 0),
      ]);
    log('');
    log(markdownTable(memoryRows));
  }
  const list = results.targets as Target[];
  if (list.length > 0) {
    log('');
    log(
      markdownTable([
        ['target', 'value', 'limit', 'met'],
        ...list.map((x) => [x.target, String(x.value), x.limit, x.met ? 'yes' : 'NO']),
      ]),
    );
  }
}

function format(value: number, digits: number): string {
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function markdownTable(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
  const line = (row: string[]) =>
    `| ${row.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join(' | ')} |`;
  return [
    line(rows[0]!),
    `|${widths.map((w, c) => (c === 0 ? '-'.repeat(w + 2) : `${'-'.repeat(w + 1)}:`)).join('|')}|`,
    ...rows.slice(1).map(line),
  ].join('\n');
}

await main();
