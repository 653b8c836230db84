// The example scenarios (apps/simulator/scenarios) as the tests that run them all load them: under
// each strategy, the long ones shortened.
import { readdir, readFile } from 'node:fs/promises';
import { parseScenario, type Scenario, type Step } from '@pagevisor/workloads';

/** The directory of the example scenarios. */
export const EXAMPLES_DIR = new URL('../scenarios/', import.meta.url);

/** The example scenario `name`, parsed. */
export async function loadExample(name: string): Promise<Scenario> {
  return parseScenario(JSON.parse(await readFile(new URL(name, EXAMPLES_DIR), 'utf8')));
}

/**
 * `s` under `strategy` (its dedup options kept only for its own strategy). A strategy without
 * KSM's full_scans cannot wait for scans: each wait_full_scans becomes a 500 ms wait and the
 * steps' `expect`s (written for KSM) go.
 */
export function under(s: Scenario, strategy: string): Scenario {
  const dedup = strategy === s.dedup.strategy ? s.dedup : { strategy };
  if (strategy === 'ksm' || !s.steps.some((st) => st.op === 'wait_full_scans')) return parseScenario({ ...s, dedup });
  const steps = s.steps.map((st): Step => {
    const { expect: _expect, ...rest } = st;
    return st.op === 'wait_full_scans' ? { op: 'wait', ms: 500 } : (rest as Step);
  });
  return parseScenario({ ...s, dedup, steps });
}

/**
 * Shrinks the example scenarios that run long, so that each case takes a few seconds at most:
 * overcommit.json to 1 simulated second without its baseline run, overcommit-reading.json to 5 s
 * likewise, static-compare.json to 5 s. Their machines, guests and rates stay as they are.
 */
export function shrinkExample(file: string, s: Scenario): Scenario {
  const noBaseline = { ...s.machine, swap: { ...s.machine.swap!, compareBaseline: false } };
  if (file === 'overcommit.json') return parseScenario({ ...s, durationS: 1, machine: noBaseline });
  if (file === 'overcommit-reading.json') return parseScenario({ ...s, durationS: 5, machine: noBaseline });
  if (file === 'static-compare.json') return parseScenario({ ...s, durationS: 5 });
  return s;
}

/** The example scenario files but scale-16x1g.json (too large to run whole in a test), sorted. */
export async function exampleFiles(): Promise<string[]> {
  return (await readdir(EXAMPLES_DIR)).filter((f) => f.endsWith('.json') && f !== 'scale-16x1g.json').sort();
}

/** overcommit.json, shrunk, with its swap area changed by `swap`. */
export async function overcommitWith(swap: Partial<NonNullable<Scenario['machine']['swap']>>): Promise<Scenario> {
  const s = shrinkExample('overcommit.json', await loadExample('overcommit.json'));
  return parseScenario({ ...s, machine: { ...s.machine, swap: { ...s.machine.swap!, ...swap } } });
}

/** Every example scenario of {@link exampleFiles}, shrunk, and overcommit.json with injected swap device faults. */
export async function exampleCases(files: readonly string[]): Promise<[string, Scenario][]> {
  return [
    ...(await Promise.all(files.map(async (f): Promise<[string, Scenario]> => [f, shrinkExample(f, await loadExample(f))]))),
    ['overcommit.json + swap faults', await overcommitWith({ faults: { seed: 1, writeErrorProbability: 0.05, readErrorProbability: 0.02, shortWriteProbability: 0.02 } })],
  ];
}
