import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatFuzzStats, HYPERCALL_OPS, mergeFuzzStats, newFuzzStats, UNDECODED, type FuzzStats } from '@pagevisor/hypercall-abi';
import { fuzzConfig, fuzzEpisode, type FuzzConfig } from './fuzz-harness.js';

/** fast-check runs per configuration; FUZZ_RUNS raises it. Calls per run: FUZZ_CALLS. */
const RUNS = Number(process.env['FUZZ_RUNS'] ?? 4);
const CALLS = Number(process.env['FUZZ_CALLS'] ?? 2500);
// A fixed seed by default, so the suite is repeatable; FUZZ_SEED explores others.
const SEED = Number(process.env['FUZZ_SEED'] ?? 20261127);
/** Ops drawn no valid or mutated requests for (comma-separated FUZZ_SKIP_OPS), e.g. while a known bug is fixed. */
const SKIP = (process.env['FUZZ_SKIP_OPS'] ?? '').split(',').filter((op) => op !== '');
const OPS = HYPERCALL_OPS.filter((op) => !SKIP.includes(op));
/** Two of tools/fuzz-hypercalls.mjs's configurations: inline dedup with tmem; KSM with shared swap, lz4 tmem and uniform writes. */
const CONFIGS: readonly FuzzConfig[] = [fuzzConfig('inline')!, fuzzConfig('ksm-swap')!];
const BATCH = 500;
/** Refusals checked to change nothing: a snapshot walks every p2m entry, twice a call. */
const SNAPSHOT_RATE = 0.25;

function run(config: FuzzConfig, seed: number, calls: number, batch: number): Promise<FuzzStats> {
  return fuzzEpisode(config, seed, calls, { batch, snapshotRate: SNAPSHOT_RATE, ops: OPS });
}

/** The report of a failed run; an audit failure is replayed with an audit after every call to name the call that broke the state. */
async function failureReport(config: FuzzConfig, seed: number, stats: FuzzStats): Promise<string> {
  let report = `${config.name}, seed ${seed}:\n${formatFuzzStats(stats)}`;
  const f = stats.failures[0]!;
  if (f.kind === 'audit') {
    const replay = await run(config, seed, f.call + 1, 1);
    report += `\nreplayed with an audit after every call:\n${formatFuzzStats({ ...replay, byOp: {} })}`;
  }
  return report;
}

const total = newFuzzStats();

describe.each(CONFIGS)('fuzzing the hypercall gate ($name)', (config) => {
  it(`${RUNS} runs of ${CALLS} valid, mutated and garbage calls: no exception escapes, every rc is a known errno, refusals change nothing, audits stay clean`, async () => {
    await fc.assert(
      fc.asyncProperty(fc.integer(), async (seed) => {
        const stats = await run(config, seed, CALLS, BATCH);
        if (stats.failures.length > 0) throw new Error(await failureReport(config, seed, stats));
        mergeFuzzStats(total, stats);
        expect(stats.audits).toBe(Math.ceil(CALLS / BATCH));
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
  }, 120_000);
});

describe('fuzz coverage over every configuration', () => {
  it('reached every op, with successes and refusals, and every kind of decoding refusal', () => {
    expect(total.calls).toBe(RUNS * CALLS * CONFIGS.length);
    expect(total.failures).toEqual([]);
    const missing: string[] = [];
    for (const op of OPS) {
      const s = total.byOp[op];
      const refused = s ? Object.values(s.refused).reduce((a, b) => a + b, 0) : 0;
      if (!s || s.ok === 0 || refused === 0) missing.push(`${op}: ${s?.calls ?? 0} calls, ${s?.ok ?? 0} ok, ${refused} refused`);
    }
    expect(missing, formatFuzzStats(total)).toEqual([]);
    const undecoded = total.byOp[UNDECODED]!;
    expect(Object.keys(undecoded.refused).sort()).toEqual(['EFAULT', 'EINVAL', 'ENOSYS']);
    for (const errno of ['EPERM', 'ESRCH', 'EINVAL', 'EEXIST', 'ENOENT']) expect(total.refusals[errno], errno).toBeGreaterThan(0);
    // At least a third of the calls never reach a handler: the decoder is fuzzed as hard as the handlers.
    expect(total.malformed).toBeGreaterThan(total.calls / 3);
  });
});
