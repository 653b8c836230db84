import { accessSync, constants, readdirSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parseScenario } from '@pagevisor/workloads';
import { buildReplayer, formatKsmDiff, ksmDiff, REPLAY_SOURCE } from './ksm-diff.js';

// Every KSM scenario of the repository against this host's own KSM (the oracle for KSM mode):
// every counter at every checkpoint must equal the kernel's. The counters are machine-wide, so
// the cases run one at a time (this file's tests run in order), and nothing else on the host may
// use KSM meanwhile. Skipped, saying why, where the host has no KSM, no root, or no C compiler.

const dir = new URL('../scenarios/', import.meta.url);
const SCENARIOS = readdirSync(dir)
  .filter((f) => /^ksm-.*\.json$/.test(f))
  .sort();

function unavailable(): string | undefined {
  try {
    accessSync('/sys/kernel/mm/ksm/run', constants.W_OK);
  } catch {
    return 'the host has no KSM, or /sys/kernel/mm/ksm is not writable (not root)';
  }
  if (spawnSync('cc', ['--version']).error !== undefined) return 'no C compiler (cc) to build tools/ksm-replay';
  return undefined;
}

const why = unavailable();
if (why !== undefined) console.log(`ksm-oracle: skipped: ${why}`);

describe.skipIf(why !== undefined)("KSM scenarios against this host's KSM", () => {
  it('builds the replayer', () => {
    expect(buildReplayer(REPLAY_SOURCE)).toMatch(/pagevisor-ksm-replay-/);
  });

  it('has the KSM scenarios to compare', () => {
    expect(SCENARIOS.length).toBeGreaterThanOrEqual(5);
  });

  for (const file of SCENARIOS) {
    it(`${file}: every counter equals the kernel's at every checkpoint`, async () => {
      const scenario = parseScenario(JSON.parse(readFileSync(new URL(file, dir), 'utf8')));
      const diff = await ksmDiff(scenario);
      expect(diff.rows.length).toBeGreaterThan(0);
      expect(diff.differences, formatKsmDiff(diff)).toBe(0);
    }, 180_000);
  }
});
