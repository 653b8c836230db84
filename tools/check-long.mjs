#!/usr/bin/env node
// The long-budget correctness run: the hypercall fuzzer (tools/fuzz-hypercalls.mjs, every fuzz
// configuration, one seed per episode) and the reference-model check (the conformance kit,
// @pagevisor/testkit, on every built-in strategy, eviction policy and allocator in every
// configuration of its matrix: packages/testkit/src/built-ins-*.test.ts, one fast-check seed per
// sequence), one after the other, then one summary: operations, seeds, configurations (a
// configuration per built-in part and host), divergences. Exits 1 when either finds anything.
// Needs the packages built (npm run check:long builds them first).
//
//   node tools/check-long.mjs [--fuzz-calls N] [--episode E] [--model-runs R] [--seed S] (--help)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FUZZ_CONFIGS } from '@pagevisor/hypervisor';

const { values: args } = parseArgs({
  options: {
    'fuzz-calls': { type: 'string', default: '2500000' },
    episode: { type: 'string', default: '5000' },
    'model-runs': { type: 'string', default: '100' },
    seed: { type: 'string', default: '1' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(`usage: node tools/check-long.mjs [options]
  --fuzz-calls N   hypercalls per fuzz configuration (default 2500000; ${FUZZ_CONFIGS.length} configurations)
  --episode E      calls on one hypervisor, each episode with its own seed (default 5000)
  --model-runs R   reference-model sequences per configuration of each built-in part (default 100)
  --seed S         seed of the fuzzer and of the model check (default 1)`);
  process.exit(0);
}
const intArg = (name) => {
  const v = Number(args[name]);
  if (!Number.isSafeInteger(v) || v < 1) {
    console.error(`--${name} must be a positive integer, got ${args[name]}`);
    process.exit(2);
  }
  return v;
};
const calls = intArg('fuzz-calls');
const episode = intArg('episode');
const runs = intArg('model-runs');
const seed = intArg('seed');
const root = new URL('..', import.meta.url).pathname;
const started = Date.now();

const configs = FUZZ_CONFIGS.map((c) => c.name);
console.error(`fuzzer: ${configs.join(', ')}, ${calls} calls each in episodes of ${episode}`);
const fuzzStarted = Date.now();
const fuzz = spawnSync(
  process.execPath,
  [join(root, 'tools/fuzz-hypercalls.mjs'), '--calls', String(calls), '--episode', String(episode), '--seed', String(seed), ...configs.flatMap((c) => ['--config', c])],
  { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' },
);
process.stdout.write(fuzz.stdout);
const fuzzS = (Date.now() - fuzzStarted) / 1000;

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-check-long-'));
const summaryFile = join(dir, 'model.jsonl');
console.error(`model check: ${runs} sequences per configuration, seed ${seed}`);
const modelStarted = Date.now();
const model = spawnSync(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'src/built-ins-'], {
  cwd: join(root, 'packages/testkit'),
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, MODEL_CHECK_RUNS: String(runs), MODEL_CHECK_SEED: String(seed), MODEL_CHECK_SUMMARY: summaryFile, MODEL_CHECK_SHRINK: '0' },
});
const modelS = (Date.now() - modelStarted) / 1000;
let lines = [];
try {
  lines = readFileSync(summaryFile, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
} catch {
  // No summary: the model check failed before a configuration finished; its exit code says so.
}
rmSync(dir, { recursive: true, force: true });

const fuzzEpisodes = configs.length * Math.ceil(calls / episode);
const fuzzCalls = configs.length * calls;
const modelSequences = lines.reduce((n, l) => n + l.sequences, 0);
const modelOps = lines.reduce((n, l) => n + l.operations, 0);
const failed = fuzz.status !== 0 || model.status !== 0;
console.log(`check-long: seed ${seed}
  fuzzer:      ${fuzzCalls.toLocaleString('en-US')} hypercalls, ${fuzzEpisodes.toLocaleString('en-US')} episodes (seeds), ${configs.length} configurations, ${fuzzS.toFixed(0)} s: ${fuzz.status === 0 ? '0 failures' : `FAILED (exit ${fuzz.status})`}
  model check: ${modelOps.toLocaleString('en-US')} operations, ${modelSequences.toLocaleString('en-US')} sequences (seeds), ${lines.length} configurations, ${modelS.toFixed(0)} s: ${model.status === 0 ? '0 divergences' : `FAILED (exit ${model.status})`}
  together:    ${(fuzzCalls + modelOps).toLocaleString('en-US')} operations over ${(fuzzEpisodes + modelSequences).toLocaleString('en-US')} seeds in ${((Date.now() - started) / 1000).toFixed(0)} s; ${failed ? 'FAILED' : '0 divergences'}`);
process.exit(failed ? 1 : 0);
