import { describe, expect, it } from 'vitest';
import { MAX_RMAP_AGE, shouldSkipItem, skipAge } from './smart-scan.js';

describe('smart_scan', () => {
  it('skip_age grows 1, 2, 4, 8 with the age, as in the kernel', () => {
    expect([0, 3, 4, 5, 6, 8, 9, 200].map(skipAge)).toEqual([1, 1, 2, 2, 4, 4, 8, 8]);
  });

  it('never skips the first 4 scans, then alternates skip runs of 1, 2, 4, 8 with single scans', () => {
    const age = new Uint8Array(1);
    const skips = new Uint8Array(1);
    const decisions = Array.from({ length: 32 }, () => (shouldSkipItem(age, skips, 0) ? 'S' : '.')).join('');
    expect(decisions).toBe('....S.SS.SSSS.SSSSSSSS.SSSSSSSS.');
  });

  it('ages saturate at 255 and keep the 8-scan rhythm', () => {
    const age = new Uint8Array([MAX_RMAP_AGE]);
    const skips = new Uint8Array(1);
    const decisions = Array.from({ length: 18 }, () => (shouldSkipItem(age, skips, 0) ? 'S' : '.')).join('');
    expect(decisions).toBe('.SSSSSSSS.SSSSSSSS');
    expect(age[0]).toBe(MAX_RMAP_AGE);
  });
});
