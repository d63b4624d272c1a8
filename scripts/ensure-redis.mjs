// Redis-backed tests start their own redis-server from PATH. When it is missing, install it where
// that is possible (root with apt-get), else stop with a one-line instruction: never skip silently.
import { execFileSync, spawnSync } from 'node:child_process';

const found = () => spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).status === 0;

if (!found()) {
  const canApt = process.getuid?.() === 0 && spawnSync('apt-get', ['--version']).status === 0;
  if (canApt) {
    console.log('redis-server not found: installing it with apt-get (Redis-backed tests need it)');
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', 'redis-server'], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  }
  if (!found()) {
    console.error(
      'redis-server is not on PATH. Install Redis 7 (for example: sudo apt-get install -y redis-server), then run npm test again.',
    );
    process.exit(1);
  }
}
console.log(`ensure-redis: ${spawnSync('redis-server', ['--version'], { encoding: 'utf8' }).stdout.trim()}`);
