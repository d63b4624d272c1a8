import { fork, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';
import type { RedisProbe } from '../support/redis-probe.js';
import { within } from '../support/stats.js';
import type { BenchPayload } from '../systems/system.js';
import { stopChild } from '../support/child-process.js';

export interface HttpConfig {
  /** Measured time per route, in `slices` turns. */
  durationSeconds: number;
  /** The routes take turns this many times, so that both meet the same moments of a noisy machine. */
  slices: number;
  warmupSeconds: number;
  connections: number;
  payload: BenchPayload;
}

export type HttpStore = 'memory' | 'redis';

export interface HttpRound {
  /** 2xx answers per second on POST /api/process (202 Accepted, job stored). */
  submitPerSecond: number;
  /** 2xx answers per second on the plain route of the same app. */
  plainPerSecond: number;
  submitLatencyP99Ms: number;
  plainLatencyP99Ms: number;
  /** CPU time of the app process per answered request, in µs: less sensitive to a busy machine. */
  submitCpuMicrosPerRequest: number;
  plainCpuMicrosPerRequest: number;
}

const SERVER_SCRIPT = new URL('../http-server.js', import.meta.url);

/**
 * One round: a fresh sample app (its own process, so that autocannon does not share its core),
 * then the plain route and the async endpoint under the same load, taking turns in slices of
 * `durationSeconds / slices` (the first route alternates between rounds). Taking turns also shares
 * the memory store's growing heap between the two routes, where one long run each gave the later
 * route all of it.
 */
export async function httpRound(
  store: HttpStore,
  probe: RedisProbe,
  config: HttpConfig,
  plainFirst: boolean,
): Promise<HttpRound> {
  await probe.flush();
  const server = fork(SERVER_SCRIPT, store === 'redis' ? [probe.url] : [], { stdio: 'inherit' });
  try {
    const port = await within(listeningPort(server), 30_000, 'sample app start');
    const base = `http://127.0.0.1:${port}`;
    const order = plainFirst
      ? (['/bench/plain', '/api/process'] as const)
      : (['/api/process', '/bench/plain'] as const);
    // Both routes are warmed up before either is measured: the route measured first in a fresh app
    // would otherwise pay for the JIT compiling the code the two routes share.
    for (const path of order) await warmUp(`${base}${path}`, config);
    const slices: Record<string, Measured[]> = { '/api/process': [], '/bench/plain': [] };
    for (let slice = 0; slice < config.slices; slice++) {
      for (const path of order) slices[path]!.push(await load(server, `${base}${path}`, config));
    }
    const submit = combine(slices['/api/process']!);
    const plain = combine(slices['/bench/plain']!);
    return {
      submitPerSecond: submit.successesPerSecond,
      plainPerSecond: plain.successesPerSecond,
      submitLatencyP99Ms: submit.latencyP99Ms,
      plainLatencyP99Ms: plain.latencyP99Ms,
      submitCpuMicrosPerRequest: submit.cpuMicrosPerRequest,
      plainCpuMicrosPerRequest: plain.cpuMicrosPerRequest,
    };
  } finally {
    await stopChild(server);
  }
}

interface Measured {
  result: autocannon.Result;
  cpuMicros: number;
}

/**
 * The slices of one route as one run: their 2xx per second of their time, CPU per request, and the
 * highest of their p99 latencies (an upper bound of the run's p99: a slice that met a stall counts).
 */
function combine(slices: readonly Measured[]) {
  const total = (pick: (slice: Measured) => number) => slices.reduce((sum, slice) => sum + pick(slice), 0);
  return {
    successesPerSecond: total((slice) => slice.result['2xx']) / total((slice) => slice.result.duration),
    cpuMicrosPerRequest: total((slice) => slice.cpuMicros) / total((slice) => slice.result.requests.total),
    latencyP99Ms: Math.max(...slices.map((slice) => slice.result.latency.p99)),
  };
}

function loadOptions(url: string, config: HttpConfig) {
  return {
    url,
    method: 'POST' as const,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(config.payload),
    connections: config.connections,
  };
}

async function warmUp(url: string, config: HttpConfig): Promise<void> {
  await autocannon({ ...loadOptions(url, config), duration: config.warmupSeconds });
}

async function load(server: ChildProcess, url: string, config: HttpConfig): Promise<Measured> {
  const options = loadOptions(url, config);
  const before = await cpuUsage(server);
  const result = await autocannon({ ...options, duration: config.durationSeconds / config.slices });
  const after = await cpuUsage(server);
  if (result.non2xx > 0 || result.errors > 0) {
    console.warn(`  ${url}: ${result.non2xx} non-2xx answers, ${result.errors} errors (not counted)`);
  }
  return { result, cpuMicros: after.user - before.user + after.system - before.system };
}

function cpuUsage(server: ChildProcess): Promise<NodeJS.CpuUsage> {
  return new Promise((resolve) => {
    const onMessage = (message: { type: string; usage: NodeJS.CpuUsage }) => {
      if (message.type !== 'cpu') return;
      server.off('message', onMessage);
      resolve(message.usage);
    };
    server.on('message', onMessage);
    server.send({ type: 'cpu' });
  });
}

function listeningPort(server: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    server.on('message', (message: { type: string; port: number }) => {
      if (message.type === 'listening') resolve(message.port);
    });
    server.once('exit', (code) => reject(new Error(`sample app exited (${code}) before listening`)));
  });
}
