#!/usr/bin/env node
// The `nestjs-async-endpoints` command (package.json "bin"): see cli.ts and docs/deployment.md.
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(`${text}\n`),
  stderr: (text) => process.stderr.write(`${text}\n`),
  env: process.env,
});
process.exitCode = code;
// Everything is closed by now and the process ends on its own once output is flushed; this only
// guards against a handle left open by accident (an unref'd timer never keeps the process alive).
setTimeout(() => process.exit(code), 2000).unref();
