// Tests need three programs from PATH: redis-server (Redis-backed tests start their own), redis-cli
// (the Cluster tests form their Cluster with `redis-cli --cluster create`; Debian's redis-server
// package brings it, redis-tools alone also has it) and Debian's chromium (the dashboard's browser
// tests drive it with playwright-core, which downloads no browser).
// When one is missing, install it where that is possible (root with apt-get), else stop with a
// one-line instruction: never skip silently.
import { execFileSync, spawnSync } from 'node:child_process';

const TOOLS = [
  { command: 'redis-server', packageName: 'redis-server', needs: 'Redis 7', usedBy: 'Redis-backed tests' },
  { command: 'redis-cli', packageName: 'redis-tools', needs: 'redis-cli (Redis 7)', usedBy: 'the Redis Cluster tests' },
  { command: 'chromium', packageName: 'chromium', needs: 'Chromium', usedBy: "the dashboard's browser tests" },
];

const version = (command) => spawnSync(command, ['--version'], { encoding: 'utf8' });
const found = (command) => version(command).status === 0;
const canApt = process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
let updated = false;

for (const { command, packageName, needs, usedBy } of TOOLS) {
  if (!found(command) && canApt) {
    console.log(`${command} not found: installing ${packageName} with apt-get (${usedBy} need it)`);
    if (!updated) execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    updated = true;
    execFileSync('apt-get', ['install', '-y', '-qq', packageName], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  if (!found(command)) {
    console.error(
      `${command} is not on PATH. Install ${needs} (for example: sudo apt-get install -y ${packageName}), then run npm test again.`,
    );
    process.exit(1);
  }
  console.log(`ensure-test-tools: ${version(command).stdout.trim()}`);
}
