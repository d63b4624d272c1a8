// Copies what tsc does not emit next to the compiled modules, which read them relative to their own
// file: the Redis store's Lua scripts and the dashboard's page, script and style (lib/dashboard/assets). Usage: node scripts/copy-assets.mjs <outDir> [<libDirInOut>]
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const source = join(root, 'lib');
// <outDir> may be absolute (the packaging test builds into a temporary directory).
const target = resolve(root, process.argv[2] ?? 'dist', process.argv[3] ?? '');

const assets = readdirSync(source, { recursive: true }).filter(
  (path) => path.endsWith('.lua') || /(^|\/)assets\/[^/]+\.(html|js|css)$/.test(path),
);
for (const path of assets) {
  mkdirSync(dirname(join(target, path)), { recursive: true });
  copyFileSync(join(source, path), join(target, path));
}
console.log(`copy-assets: ${assets.length} file(s) from lib/ to ${target.replace(root + '/', '')}/`);
