import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PAGE_SIZE } from '@pagevisor/types';
import { afterAll, describe, expect, it } from 'vitest';
import { runScenario } from './run-scenario.js';

const dir = mkdtempSync(join(tmpdir(), 'pagevisor-image-contents-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A raw image of `pages` pages: page i holds content i % distinct (content 0: zeros). */
function image(name: string, pages: number, distinct: number): string {
  const bytes = new Uint8Array(pages * PAGE_SIZE);
  for (let i = 0; i < pages; i++) {
    const c = i % distinct;
    if (c !== 0) bytes.fill(c, i * PAGE_SIZE + (c % 7), (i + 1) * PAGE_SIZE);
  }
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return path;
}

describe('guest images on a machine of fingerprints', () => {
  it('boot as they do in bytes: one frame a distinct content, each page fingerprinted once as it is written, and --verify reads them back', async () => {
    const a = image('a.raw', 256, 40);
    const b = image('b.raw', 256, 60);
    const scenario = (contents: 'bytes' | 'fingerprints') => ({
      name: 'images',
      seed: 5,
      machine: { memoryMiB: 8, contents },
      durationS: 1,
      sampleIntervalS: 0.5,
      guests: [
        { name: 'a', memoryMiB: 1, image: { path: a, format: 'raw' }, writeRatePagesPerS: 0 },
        { name: 'b', memoryMiB: 1, image: { path: b, format: 'raw' }, writeRatePagesPerS: 0 },
      ],
    });
    const bytes = await runScenario(scenario('bytes') as never, { verify: true });
    const fingerprints = await runScenario(scenario('fingerprints') as never, { verify: true });
    // 59 distinct non-zero contents over both images (a's 1..39 are among b's 1..59), plus the zero frame.
    expect(bytes.totals.machineFramesUsed).toBe(59 + 1);
    expect(fingerprints.totals).toEqual(bytes.totals);
    expect(fingerprints.config.machine.contents).toBe('fingerprints');
    expect(fingerprints.verify).toMatchObject({ passed: true, end: { pagesDiffered: 0 } });
    expect(fingerprints.verify!.end.pagesVerified).toBeGreaterThan(500);
  });
});
