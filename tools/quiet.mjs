#!/usr/bin/env node
// Runs a command (a build) quietly: its output is shown only when it fails, with its exit code.
// `npm start` and `npm run bench` build through it, so that the run's own output is all they print.
import { spawnSync } from 'node:child_process';

const [command, ...args] = process.argv.slice(2);
const run = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 256 << 20 });
if (run.error !== undefined) {
  process.stderr.write(`${command}: ${run.error.message}\n`);
  process.exit(1);
}
if (run.status !== 0) {
  process.stderr.write(run.stdout + run.stderr);
  process.exit(run.status ?? 1);
}
