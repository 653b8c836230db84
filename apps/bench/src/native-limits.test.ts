import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { measureNativeLimits } from './native-limits.js';

const HAS_CC = spawnSync('cc', ['--version']).status === 0;

describe('the C reference limits', () => {
  it.skipIf(!HAS_CC)('build with cc, hash pages with XXH64 as xxhash-wasm does (checked), and give a rate per repeat of each figure', async () => {
    const n = await measureNativeLimits(256, 2);
    for (const key of ['copy', 'hash', 'hashCold', 'compare', 'copyHash', 'hashCompare', 'firstTouch'] as const) {
      expect(n[key], key).toHaveLength(2);
      expect(n[key].every((x) => Number.isFinite(x) && x > 0), key).toBe(true);
    }
  });

  it('says plainly when its source is not there', async () => {
    await expect(measureNativeLimits(256, 1, '/nonexistent/limits.c')).rejects.toThrow(/the C reference \/nonexistent\/limits\.c is missing/);
  });
});
