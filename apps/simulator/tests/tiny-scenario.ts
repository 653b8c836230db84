import { parseScenario, type Scenario, type ScenarioInput } from '@pagevisor/workloads';

/**
 * A tiny scenario for tests: 2 guests of 1024 pages (60% one image, 20% zeros, 20% private),
 * writing for 2 simulated seconds; `over` and `guest` override its fields and its guests'.
 */
export function tinyScenario(over: Partial<ScenarioInput> = {}, guest: Record<string, unknown> = {}): Scenario {
  return parseScenario({
    name: 'tiny',
    seed: 7,
    machine: { memoryMiB: 16 },
    durationS: 2,
    sampleIntervalS: 0.5,
    guests: [
      {
        name: 'g',
        count: 2,
        memoryMiB: 4,
        image: { id: 'os', fraction: 0.6 },
        zeroFraction: 0.2,
        writeRatePagesPerS: 200,
        writeBytes: 32,
        wholePageWriteFraction: 0.2,
        bootPagesPerS: 4096,
        ...guest,
      },
    ],
    ...over,
  });
}
