import { JOB_STATUSES, type JobStatus } from '../job/index.js';
import type { LayoutSurvey, MigrationSource } from '../store/redis/migrate/layout-migration.js';
import { describeTarget, type Command, type Connection } from './arguments.js';
import { CommandFailure } from './commands.js';
import { formatTable } from './format.js';
import { escapeControlCharacters as shown } from '../observability/log-text.js';

type MigrateCommand = Extract<Command, { name: 'migrate' }>;

const BATCH_TIMEOUT_MS = 60_000;

/**
 * `migrate`: converts 0.1.0's Redis layout under the key prefix to this version's. Checks first that
 * nothing runs on it (0.1.0 leases, workers of this version), changes data only with --yes, and says
 * what it did per status. Running it again finds nothing to do.
 */
export async function migrate(
  command: MigrateCommand,
  connection: Connection,
  { json, print }: { json: boolean; print: (text: string) => void },
): Promise<void> {
  // Loaded here, so that --help and usage errors answer without loading ioredis.
  const [{ migrateLayout, surveyLayout }, { closeConnection }, { openRedis }] = await Promise.all([
    import('../store/redis/migrate/layout-migration.js'),
    import('../store/redis/redis-connections.js'),
    import('./redis-connection.js'),
  ]);
  // A batch of 200 jobs' hashes (DUMP) may carry large payloads: more than the store's 1.5 s per call.
  // The command line refuses migrate over --cluster-nodes (arguments.ts): migrateLayout takes one Redis.
  const redis = connection.target;
  if (redis.type !== 'url') throw new CommandFailure('migrate runs against a single Redis (--redis-url) only.');
  const client = await openRedis({ ...connection, target: redis }, BATCH_TIMEOUT_MS);
  try {
    const { partitions, confirmation } = command;
    const where = `'${connection.keyPrefix}' at ${describeTarget(redis)}`;
    const survey = await surveyLayout(client, connection.keyPrefix, partitions, Date.now());
    const { source } = survey;
    const target = `layout 2 with ${plural(partitions, 'partition')}`;

    if (!source) {
      if (json)
        return print(JSON.stringify({ migrated: false, reason: 'nothing to migrate', meta: survey.meta }, null, 2));
      return print(
        survey.meta
          ? `Nothing to migrate: the store under ${where} is already in layout ${survey.meta.layout} with ${plural(survey.meta.partitions, 'partition')}.`
          : `Nothing to migrate: no 0.1.0 data under ${where}.`,
      );
    }
    if (source.layout === '0.1.0' && survey.meta && survey.meta.partitions !== partitions) {
      throw new CommandFailure(
        `The store under ${where} holds 0.1.0 data and a layout-2 marker with ${plural(survey.meta.partitions, 'partition')}: ` +
          `run migrate with --partitions ${survey.meta.partitions}.`,
      );
    }
    const found =
      source.layout === '0.1.0' ? `0.1.0 data under ${where}` : `The store under ${where}, in ${describe(source)}`;
    const blocker = command.force ? null : runningProcesses(survey);
    const how =
      source.layout === '2'
        ? 'moving each job whose partition changes'
        : partitions === 1
          ? 'in place'
          : 'moving each job to its partition';
    if (confirmation !== 'yes') {
      if (json) {
        print(
          JSON.stringify(
            {
              dryRun: true,
              from: source,
              partitions,
              found: survey.counts,
              idempotencyKeys: survey.idempotencyKeys,
              refusal: blocker,
            },
            null,
            2,
          ),
        );
      } else {
        print(`${found}:`);
        print(countTable(survey.counts));
        print(`Idempotency keys: ${survey.idempotencyKeys}`);
        print('');
        print(`Would convert it to ${target} (${how}), then write ${connection.keyPrefix}:meta.`);
        if (blocker) print(`With --yes it would refuse now: ${blocker}`);
      }
      if (confirmation === 'dry-run') return;
      throw new CommandFailure(
        `Nothing was changed: migrate changes data only with --yes. Stop every ${source.layout === '0.1.0' ? '0.1.0 ' : ''}process on this store, then run the same command with --yes.`,
      );
    }

    if (blocker) throw new CommandFailure(`Nothing was changed: ${blocker}`);
    const tally = await migrateLayout(client, connection.keyPrefix, partitions, source);
    if (json) return print(JSON.stringify({ migrated: true, from: source, partitions, ...tally }, null, 2));
    print(`Converted the store under ${where} from ${describe(source)} to ${target} (${how}):`);
    print(countTable(tally.counts));
    if (how !== 'in place') print(`Idempotency keys moved: ${tally.idempotencyKeys}`);
    if (tally.missing.length > 0) {
      print(
        `${plural(tally.missing.length, 'index entry', 'index entries')} of jobs already gone (past retention) dropped.`,
      );
    }
    if (tally.unreadable.length > 0) {
      print(
        `${plural(tally.unreadable.length, 'job')} could not be converted whole (changed outside the store: not a hash, ` +
          `or without a status, name or seq) and wait in no queue: ${shown(tally.unreadable.join(', '))}. ` +
          'Inspect them with redis-cli; submit them again if they are needed.',
      );
    }
    print(
      `Start this version with store.partitions ${partitions}${partitions === 1 ? ' (the default on a single node)' : ''}.`,
    );
  } finally {
    await closeConnection(client);
  }
}

/** Why converting now could lose work, or null. */
function runningProcesses(survey: LayoutSurvey): string | null {
  if (survey.liveWorkers.length > 0) {
    return (
      `${plural(survey.liveWorkers.length, 'worker')} of this version ${survey.liveWorkers.length === 1 ? 'is' : 'are'} registered on this key prefix ` +
      `(${shown(survey.liveWorkers.join(', '))}). Stop every process on this store first, or pass --force.`
    );
  }
  const leases = survey.liveLeases;
  if (leases > 0) {
    const version = survey.source?.layout === '0.1.0' ? '0.1.0 ' : '';
    return (
      `${plural(leases, 'job')} ${leases === 1 ? 'holds' : 'hold'} a ${version}lease that has not expired: a ${version}worker may be running ${leases === 1 ? 'it' : 'them'}. ` +
      `Stop every ${version}process first and run migrate again (a lease ends jobManager.jobClaimTimeoutMs, 30 s by default, after its worker stops). ` +
      `With --force, such a job is taken back by the recovery of this version once its ${version}lease expires, and runs twice if a ${version}worker is still running it.`
    );
  }
  return null;
}

function describe(source: Exclude<MigrationSource, null>): string {
  return source.layout === '0.1.0' ? "0.1.0's layout" : `layout 2 with ${plural(source.partitions, 'partition')}`;
}

function countTable(counts: Readonly<Record<JobStatus, number>>): string {
  return formatTable(
    ['STATUS', 'JOBS'],
    JOB_STATUSES.map((status) => [status, String(counts[status])]),
  );
}

function plural(count: number, one: string, many = `${one}s`): string {
  return `${count} ${count === 1 ? one : many}`;
}
