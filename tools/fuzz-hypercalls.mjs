#!/usr/bin/env node
// The long fuzz run of the hypercall gate: valid, mutated and garbage request buffers (see
// fuzzHypervisor in @pagevisor/hypercall-abi) against hypervisors with inline, KSM and ESX
// de-duplication, swap and tmem. Each configuration gets --calls calls, in episodes of --episode
// calls on a fresh hypervisor. No exception may escape a hypercall, every rc must be a known
// errno, a refused call must change nothing, and the audit (every --batch calls) must stay clean.
// Prints progress to stderr and a summary to stdout; exits 1 on any failure. The configurations
// and the harness (guests, the tick between calls) are the hypervisor package's fuzz-harness.ts,
// which the fuzz test runs too.
// Needs the packages built: npx nx run-many -t build.
//
//   node tools/fuzz-hypercalls.mjs [--calls N] [--seed S] [--batch B] [--episode E] [--config NAME] ... (--help)
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { formatFuzzStats, HYPERCALL_OPS, mergeFuzzStats, newFuzzStats, UNDECODED } from '@pagevisor/hypercall-abi';
import { FUZZ_CONFIGS, fuzzEpisode } from '@pagevisor/hypervisor';
import { mixSeed } from '@pagevisor/types';

const { values: args } = parseArgs({
  options: {
    calls: { type: 'string', default: '1000000' },
    seed: { type: 'string', default: '1' },
    batch: { type: 'string', default: '1000' },
    episode: { type: 'string', default: '50000' },
    'snapshot-rate': { type: 'string', default: '0.5' },
    jobs: { type: 'string', default: String(availableParallelism()) },
    config: { type: 'string', multiple: true },
    'skip-op': { type: 'string', multiple: true },
    replay: { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  console.log(`usage: node tools/fuzz-hypercalls.mjs [options]
  --calls N          calls per configuration (default 1000000)
  --seed S           32-bit seed (default 1); one seed, one run
  --batch B          calls between audits (default 1000)
  --episode E        calls on one hypervisor before a fresh one (default 50000)
  --snapshot-rate R  fraction of calls whose refusal is checked to change nothing (default 0.5)
  --jobs J           worker threads, one configuration each (default: the cores)
  --config NAME      this configuration (repeatable): inline, ksm-swap, esx-swap (the default three), inline-swap
  --skip-op OP       draw no valid or mutated request of OP (repeatable), e.g. while a known bug is fixed
  --replay SEED      replay one episode (the seed a failure names) of the one --config, --calls calls,
                     auditing after every call, and print what it finds`);
  process.exit(0);
}

const intArg = (name, min) => {
  const v = Number(args[name]);
  if (!Number.isSafeInteger(v) || v < min) {
    console.error(`--${name} must be an integer >= ${min}, got ${args[name]}`);
    process.exit(2);
  }
  return v;
};
const CALLS = intArg('calls', 1);
const SEED = intArg('seed', 0) >>> 0;
const BATCH = intArg('batch', 1);
const EPISODE = intArg('episode', 1);
const SNAPSHOT_RATE = Number(args['snapshot-rate']);
const JOBS = intArg('jobs', 1);
const SKIP = args['skip-op'] ?? [];
const OPS = HYPERCALL_OPS.filter((op) => !SKIP.includes(op));
if (SKIP.some((op) => !HYPERCALL_OPS.includes(op)) || OPS.length === 0) {
  console.error(`--skip-op takes op names (${HYPERCALL_OPS.join(', ')}) and must leave one`);
  process.exit(2);
}

/** Configurations run when --config is not given (inline-swap only on request: a fourth takes a minute more). */
const DEFAULT_CONFIGS = ['inline', 'ksm-swap', 'esx-swap'];
const CONFIGS = FUZZ_CONFIGS.filter((c) => (args.config ?? DEFAULT_CONFIGS).includes(c.name));
if (CONFIGS.length === 0) {
  console.error(`no configuration named ${args.config.join(', ')}`);
  process.exit(2);
}

const episode = (config, seed, calls, batch) =>
  fuzzEpisode(config, seed, calls, { batch, snapshotRate: SNAPSHOT_RATE, ...(SKIP.length > 0 ? { ops: OPS } : {}) });

/** What makes two failures the same: kind, op (not for audits: the last op is rarely the culprit) and the first line of the message without its numbers. */
const keyOf = (f) => `${f.kind} ${f.kind === 'audit' ? '' : f.op} ${f.message.split('\n')[0].replace(/\d+/g, 'N')}`;

/**
 * Worker: fuzzes configuration `ci` for CALLS calls, episode after episode, posting progress, each
 * new kind of failure and, at the end, its counts.
 */
async function fuzzConfig(ci) {
  const config = CONFIGS[ci];
  const total = newFuzzStats();
  const seen = new Set();
  let failedEpisodes = 0;
  let lastProgress = Date.now();
  // Stack traces cost a seventh of the run (every refusal builds a HypervisorError); a failure is
  // replayed with them.
  Error.stackTraceLimit = 0;
  for (let e = 0; total.calls < CALLS; e++) {
    const seed = mixSeed(SEED, ci * 1_000_003 + e);
    const stats = await episode(config, seed, Math.min(EPISODE, CALLS - total.calls), BATCH);
    const first = stats.failures[0];
    // The failed episode stopped early; the next one starts afresh.
    stats.failures = [];
    mergeFuzzStats(total, stats);
    if (first) {
      failedEpisodes++;
      if (!seen.has(keyOf(first))) {
        seen.add(keyOf(first));
        // Replays are deterministic: with stack traces, and for an audit with an audit after every
        // call, to name the call (or tick) that broke the state.
        Error.stackTraceLimit = 12;
        const replay = await episode(config, seed, first.call + 1, first.kind === 'audit' ? 1 : BATCH);
        Error.stackTraceLimit = 0;
        const f = replay.failures[0] ?? first;
        seen.add(keyOf(f));
        parentPort.postMessage({ type: 'failure', failure: { config: config.name, seed, ...f } });
      }
    }
    const now = Date.now();
    if (now - lastProgress >= 5000 || total.calls >= CALLS) {
      lastProgress = now;
      parentPort.postMessage({ type: 'progress', config: config.name, calls: total.calls, malformed: total.malformed, failedEpisodes });
    }
  }
  parentPort.postMessage({ type: 'done', stats: total, failedEpisodes });
}

function describeFailure(f, indent) {
  return `${indent}[${f.config}, episode seed ${f.seed}] [${f.kind}] call ${f.call} op ${f.op} caller ${f.caller}\n${indent}  request ${f.hex}\n${indent}  ${f.message.replace(/\n/g, `\n${indent}  `)}`;
}

/** Main thread: one worker per configuration, at most one per core at a time; then the summary. */
async function main() {
  const started = Date.now();
  const total = newFuzzStats();
  const failures = [];
  const progress = new Map();
  let failedEpisodes = 0;
  const runOne = (ci) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(new URL(import.meta.url), { argv: process.argv.slice(2), workerData: { ci } });
      worker.on('message', (m) => {
        if (m.type === 'failure') {
          failures.push(m.failure);
          console.error(`FAILURE\n${describeFailure(m.failure, '  ')}`);
        } else if (m.type === 'progress') {
          progress.set(m.config, m.calls);
          const calls = [...progress.values()].reduce((a, b) => a + b, 0);
          const secs = (Date.now() - started) / 1000;
          console.error(`[${m.config}] ${m.calls}/${CALLS} calls (${m.malformed} malformed, ${m.failedEpisodes} failed episodes); all: ${calls} calls in ${secs.toFixed(0)} s, ${Math.round(calls / secs)} calls/s`);
        } else if (m.type === 'done') {
          mergeFuzzStats(total, m.stats);
          failedEpisodes += m.failedEpisodes;
          resolve();
        }
      });
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker for ${CONFIGS[ci].name} exited with ${code}`))));
    });
  const queue = CONFIGS.map((_, ci) => ci);
  const jobs = Math.max(1, Math.min(JOBS, queue.length));
  await Promise.all(
    Array.from({ length: jobs }, async () => {
      while (queue.length > 0) await runOne(queue.shift());
    }),
  );

  const wallS = (Date.now() - started) / 1000;
  const successes = Object.entries(total.byOp)
    .filter(([op]) => op !== UNDECODED)
    .sort((a, b) => a[0].localeCompare(b[0]))
    .map(([op, s]) => `${op} ${s.ok}`)
    .join(', ');
  const neverOk = HYPERCALL_OPS.filter((op) => !(total.byOp[op]?.ok > 0));
  console.log(`fuzz-hypercalls: seed ${SEED}; ${CONFIGS.map((c) => c.name).join(', ')}: ${CALLS} calls each, ${jobs} workers${SKIP.length > 0 ? `; skipping ${SKIP.join(', ')}` : ''}`);
  console.log(formatFuzzStats(total));
  console.log(`successes by op: ${successes}`);
  if (neverOk.length > 0) console.log(`ops that never succeeded: ${neverOk.join(', ')}`);
  console.log(`wall time ${wallS.toFixed(1)} s (${Math.round(total.calls / wallS)} calls/s); failed episodes ${failedEpisodes}`);
  if (failures.length > 0) {
    console.log(`FAILURES (${failures.length} distinct):`);
    for (const f of failures) console.log(describeFailure(f, '  '));
    process.exit(1);
  }
}

/** --replay: one episode in this thread, with stack traces and an audit after every call. */
async function replay() {
  if (CONFIGS.length !== 1) {
    console.error('--replay needs exactly one --config');
    process.exit(2);
  }
  const seed = Number(args.replay) >>> 0;
  const stats = await episode(CONFIGS[0], seed, CALLS, 1);
  console.log(`replay of ${CONFIGS[0].name}, episode seed ${seed}, ${CALLS} calls:\n${formatFuzzStats(stats)}`);
  if (stats.failures.length > 0) process.exit(1);
}

if (args.replay !== undefined) await replay();
else if (isMainThread) await main();
else await fuzzConfig(workerData.ci);
