import type { ScenarioInput } from '@pagevisor/workloads';

/**
 * Three 8 MiB guests on 16 MiB with a shared swap area and a moving working set: every chart and
 * every CSV column gets data. `name` and `guestName` let a test put hostile text in the report.
 */
export function tinySwapScenario(name: string, guestName = 'vm'): ScenarioInput {
  return {
    name,
    seed: 3,
    machine: { memoryMiB: 16, swap: { mode: 'shared', device: 'memory' } },
    dedup: { strategy: 'inline' },
    durationS: 1.5,
    sampleIntervalS: 0.25,
    guests: [
      {
        name: guestName,
        count: 3,
        memoryMiB: 8,
        image: { id: 'debian-12', fraction: 0.5 },
        zeroFraction: 0.1,
        writeRatePagesPerS: 400,
        readRatePagesPerS: 800,
        workingSet: { fraction: 0.3, moveEveryS: 0.5 },
      },
    ],
  };
}
