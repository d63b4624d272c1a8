import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NodeProcess } from '../support/node-processes.js';

/**
 * The package as users get it: the build of lib/ (the working tree's dist/ when it is newer than every
 * source, as after `npm run build` on CI; otherwise built afresh into a temporary directory), packed
 * with `npm pack`, unpacked into the node_modules of two throwaway Nest apps as `nest new` generates
 * them, one CommonJS and one ESM, compiled with the project's `tsc` and booted. Everything else the
 * apps import comes from the project's node_modules, so no network is needed.
 */
const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const PACKAGE = 'nestjs-async-endpoints';

/** `nest new`'s tsconfig.json (CommonJS or ESM is decided by package.json "type"). */
const NEST_NEW_TSCONFIG = {
  compilerOptions: {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    resolvePackageJsonExports: true,
    esModuleInterop: true,
    isolatedModules: true,
    declaration: true,
    removeComments: true,
    emitDecoratorMetadata: true,
    experimentalDecorators: true,
    allowSyntheticDefaultImports: true,
    target: 'ES2023',
    sourceMap: true,
    outDir: './dist',
    skipLibCheck: true,
    strictNullChecks: true,
    forceConsistentCasingInFileNames: true,
    noImplicitAny: false,
  },
  include: ['src'],
};

/** One async endpoint and its handler, on the default in-memory store, and the dashboard. */
const APP_SOURCE = `import 'reflect-metadata';
import { Body, Controller, Injectable, Module, Post } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { ScheduleModule } from '@nestjs/schedule';
import { AsyncEndpoint, AsyncEndpointsModule, AsyncHandler, type AsyncContext, type AsyncEndpointHandler } from '${PACKAGE}';

interface GreetRequest {
  name: string;
}

@Controller()
class GreetController {
  @Post('greet')
  @AsyncEndpoint('Greet')
  submit(@Body() _body: GreetRequest) {}
}

@AsyncHandler('Greet')
@Injectable()
class GreetHandler implements AsyncEndpointHandler<GreetRequest, { greeting: string }> {
  async handle({ request }: AsyncContext<GreetRequest>) {
    return { greeting: 'Hello, ' + request.name };
  }
}

@Module({
  imports: [ScheduleModule.forRoot(), AsyncEndpointsModule.forRoot({ dashboard: { enabled: true } })],
  controllers: [GreetController],
  providers: [GreetHandler],
})
class AppModule {}

async function bootstrap() {
  const app = await NestFactory.create(AppModule, { logger: ['error', 'warn'] });
  app.enableShutdownHooks();
  await app.listen(0, '127.0.0.1');
  const moduleSystem = typeof require === 'function' ? 'commonjs' : 'esm';
  console.log('READY ' + JSON.stringify({ port: app.getHttpServer().address().port, moduleSystem }));
}
void bootstrap();
`;

type ModuleSystem = 'commonjs' | 'esm';

/**
 * Whether dist/ is what `npm run build` makes of the sources now: every output newer than every
 * source and build config, and no output left over from a deleted source.
 */
function distIsFresh(): boolean {
  const dist = join(ROOT, 'dist');
  if (!existsSync(join(dist, 'index.js'))) return false;
  const files = (dir: string) =>
    readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((file) => /\.(ts|js|lua)$/.test(file));
  // The dashboard's script (lib/dashboard/assets) is copied as it is.
  const sources = files(join(ROOT, 'lib')).filter((file) => !file.endsWith('.js') || file.includes('assets/'));
  const outputs = files(dist).filter((file) => !file.endsWith('.d.ts'));
  const expected = new Set(sources.map((file) => file.replace(/\.ts$/, '.js')));
  if (outputs.length !== expected.size || !outputs.every((file) => expected.has(file))) return false;
  const newestSource = Math.max(
    ...sources.map((file) => statSync(join(ROOT, 'lib', file)).mtimeMs),
    ...['tsconfig.json', 'tsconfig.build.json'].map((file) => statSync(join(ROOT, file)).mtimeMs),
  );
  return outputs.every((file) => statSync(join(dist, file)).mtimeMs >= newestSource);
}

let workDir: string;
let apps: Record<ModuleSystem, string>;
const started: NodeProcess[] = [];

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'ae-packed-'));
  const packageDir = join(workDir, 'package');
  mkdirSync(packageDir);
  if (distIsFresh()) {
    await run('cp', ['-r', join(ROOT, 'dist'), packageDir]);
  } else {
    await run(process.execPath, [TSC, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(packageDir, 'dist')]);
    await run(process.execPath, [join(ROOT, 'scripts', 'copy-assets.mjs'), join(packageDir, 'dist')]);
  }
  await run('cp', ['-r', join(ROOT, 'package.json'), join(ROOT, 'README.md'), join(ROOT, 'docs'), packageDir]);
  const { stdout } = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', workDir], {
    cwd: packageDir,
  });
  const [{ filename }] = JSON.parse(stdout) as [{ filename: string }];

  // Both apps resolve their imports from workDir/node_modules: the unpacked tarball, and a link to
  // every other package of the project (the peers and the package's own dependencies).
  const modules = join(workDir, 'node_modules');
  mkdirSync(join(modules, PACKAGE), { recursive: true });
  await run('tar', ['-xzf', join(workDir, filename), '-C', join(modules, PACKAGE), '--strip-components=1']);
  for (const entry of readdirSync(join(ROOT, 'node_modules'))) {
    if (!entry.startsWith('.') && entry !== PACKAGE)
      symlinkSync(join(ROOT, 'node_modules', entry), join(modules, entry), 'dir');
  }

  apps = { commonjs: join(workDir, 'cjs-app'), esm: join(workDir, 'esm-app') };
  for (const [moduleSystem, dir] of Object.entries(apps)) {
    mkdirSync(join(dir, 'src'), { recursive: true });
    const type = moduleSystem === 'esm' ? { type: 'module' } : {};
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: `${moduleSystem}-app`, private: true, ...type }));
    writeFileSync(join(dir, 'tsconfig.json'), JSON.stringify(NEST_NEW_TSCONFIG));
    writeFileSync(join(dir, 'src', 'main.ts'), APP_SOURCE);
  }
  await Promise.all(Object.values(apps).map((dir) => run(process.execPath, [TSC, '-p', join(dir, 'tsconfig.json')])));
}, 120_000);

afterAll(async () => {
  await Promise.all(started.map((app) => app.stop()));
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

describe('the packed package', () => {
  it('holds the build, the README and the docs, and exports one entry for import and require', () => {
    const pkg = JSON.parse(readFileSync(join(workDir, 'node_modules', PACKAGE, 'package.json'), 'utf8')) as {
      exports: Record<string, Record<string, string>>;
    };
    expect(pkg.exports['.']).toEqual({
      types: './dist/index.d.ts',
      import: './dist/index.js',
      require: './dist/index.js',
      default: './dist/index.js',
    });
    expect(readdirSync(join(workDir, 'node_modules', PACKAGE)).sort()).toEqual([
      'README.md',
      'dist',
      'docs',
      'package.json',
    ]);
  });

  it.each<[string, ModuleSystem]>([
    ['a CommonJS', 'commonjs'],
    ['an ESM', 'esm'],
  ])(
    'loads in %s Nest app, which runs a job to Completed over HTTP and serves the dashboard',
    async (_label, moduleSystem) => {
      const { process: app, ready } = await NodeProcess.start<{ port: number; moduleSystem: string }>(
        `${moduleSystem}-app`,
        join(apps[moduleSystem], 'dist', 'main.js'),
        {},
      );
      started.push(app);
      expect(ready.moduleSystem).toBe(moduleSystem);
      const base = `http://127.0.0.1:${ready.port}`;

      const submitted = await fetch(`${base}/greet`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ name: moduleSystem }),
      });
      expect(submitted.status).toBe(202);
      const location = submitted.headers.get('location');
      expect(location).toMatch(/^\/jobs\/[0-9a-f-]{36}$/);

      const finished = await fetch(`${base}${location}?waitSeconds=20`);
      expect(finished.status).toBe(200);
      expect(await finished.json()).toMatchObject({
        name: 'Greet',
        status: 'Completed',
        result: { greeting: `Hello, ${moduleSystem}` },
      });

      // The dashboard's files are in the package: the page, and the script and style it names.
      const page = await fetch(`${base}/admin/jobs`);
      expect(page.status).toBe(200);
      const html = await page.text();
      for (const asset of html.match(/assets\/dashboard\.(js|css)\?v=\w+/g) ?? []) {
        expect((await fetch(`${base}/admin/jobs/${asset}`)).status).toBe(200);
      }
      expect(html.match(/assets\/dashboard\.(js|css)\?v=\w+/g)).toHaveLength(2);
    },
  );
});
