// jest.config.ts's testSequencer. Without jest's cache of durations (CI starts from a clean clone),
// jest orders test files by size, and a slow file started near the end keeps one of the two workers
// busy alone while the other idles. The files below take the longest (measured with
// `npm test -- --json`; keep the list to about the 16 slowest); they start first, slowest first, and
// the others follow in jest's order.
import TestSequencer from '@jest/test-sequencer';

const SLOWEST_FIRST = [
  'test/deployment/split-topology.spec.ts',
  'test/reliability/redis-cluster.spec.ts',
  'test/reliability/multi-process.spec.ts',
  'test/reliability/cluster-mixed-pools.spec.ts',
  'test/packaging/packed-package.spec.ts',
  'test/reliability/poison-job.spec.ts',
  'test/deployment/deployment-docs.spec.ts',
  'test/reliability/worker-kill.spec.ts',
  'test/reliability/worker-sigterm.spec.ts',
  'test/dashboard/dashboard-browser.spec.ts',
  'test/reliability/redis-restart.spec.ts',
  'test/e2e/sample-lifecycle.e2e.spec.ts',
  'test/api/public-api.spec.ts',
  'test/e2e/long-poll.e2e.spec.ts',
  'test/dashboard/dashboard-api.e2e.spec.ts',
  'test/reliability/redis-outage.spec.ts',
];

export default class SlowFirstSequencer extends TestSequencer {
  sort(tests) {
    const rank = (test) => {
      const index = SLOWEST_FIRST.findIndex((file) => test.path.endsWith(`/${file}`));
      return index === -1 ? SLOWEST_FIRST.length : index;
    };
    // Array sort is stable: the other files keep jest's order.
    return super.sort(tests).sort((a, b) => rank(a) - rank(b));
  }
}
