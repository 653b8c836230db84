import { parseScenario, type Scenario } from './scenario.js';

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * The scenario `pagevisor run` uses when given none: 8 guests of 128 MiB (262144 guest pages)
 * on 512 MiB of RAM (131072 frames), inline dedup. Each guest holds 70% of one shared OS image,
 * 10% zero pages and 20% private data, then writes 50 pages/s for 60 simulated seconds, breaking
 * some sharing. With inline dedup it needs about 95k frames at the end (one image copy, private
 * data, broken pages); without dedup it needs every guest page and runs out of memory.
 * Frozen: copy it to change it.
 */
export const DEFAULT_SCENARIO: Scenario = deepFreeze(
  parseScenario({
    name: 'default',
    seed: 1,
    machine: { memoryMiB: 512, allocator: 'buddy' },
    dedup: { strategy: 'inline' },
    durationS: 60,
    sampleIntervalS: 1,
    guests: [
      {
        name: 'vm',
        count: 8,
        memoryMiB: 128,
        image: { id: 'linux-6.1-server', fraction: 0.7 },
        zeroFraction: 0.1,
        writeRatePagesPerS: 50,
        writeBytes: 64,
        wholePageWriteFraction: 0.1,
        bootPagesPerS: 65_536,
      },
    ],
  }),
);
